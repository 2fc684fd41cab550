//! Property tests of the settings checks: random flag values and strings go through the
//! command line's parsing and [`plan`](crate::plan) (every check, no data loaded, nothing
//! trained), which must answer with a plan or an error, never a panic, and every error must
//! name a flag (or be clap's own usage error).

use clap::Parser;
use proptest::prelude::*;

use crate::{plan, Cli};

/// A value a person might type, or a machine might generate, for a numeric flag.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:e}")),
        (0u32..40).prop_map(|e| format!("1e{e}")),
        (0u32..40).prop_map(|e| format!("-1e-{e}")),
        Just("18446744073709551615".to_string()),
        Just("18446744073709551616".to_string()),
        Just("9223372036854775808".to_string()),
        Just("4611686018427387904".to_string()),
        Just("nan".to_string()),
        Just("-inf".to_string()),
        Just("inf".to_string()),
        Just("0".to_string()),
        Just("-0".to_string()),
        Just("1".to_string()),
        Just("2".to_string()),
        Just(String::new()),
        "[ -~]{0,12}",
    ]
}

/// Flags of `train` that take a number, with the values they are tried with.
const TRAIN_FLAGS: &[&str] = &[
    "--batch",
    "--lambda",
    "--cycles",
    "--n-s",
    "--eta-min",
    "--eta-max",
    "--decay",
    "--alpha",
    "--precise-batches",
    "--augment",
    "--tta",
    "--evals-per-cycle",
    "--train-eval",
    "--n-train",
    "--n-val",
    "--n-test",
    "--sig",
    "--seed",
];

const CHOICES: &[(&str, &[&str])] = &[
    ("--bn", &["before", "after", "none"]),
    (
        "--bn-stats",
        &["ema", "precise", "precise-report", "adaptive"],
    ),
    ("--optimizer", &["sgd", "adam"]),
];

fn hidden() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(number(), 1..4).prop_map(|v| v.join(",")),
        proptest::collection::vec(0usize..200, 1..10).prop_map(|v| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        }),
    ]
}

/// Parses `args` and plans the command; returns the error text, if any. Panics only if the
/// code under test does.
fn check(args: &[String]) -> Option<String> {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return Some(e.to_string()),
    };
    plan(cli).err().map(|e| e.to_string())
}

fn assert_names_a_flag(args: &[String], err: Option<String>) {
    if let Some(msg) = err {
        // A checked error names a flag or setting; clap's own errors name the argument.
        assert!(
            msg.contains("--") || msg.contains("`") || msg.contains("error:"),
            "{args:?}: message names nothing: {msg}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_train_flags_never_panic(
        picks in proptest::collection::vec((0..TRAIN_FLAGS.len(), number()), 0..6),
        choices in proptest::collection::vec((0..CHOICES.len(), 0usize..4), 0..3),
        hidden in proptest::option::of(hidden()),
        f64 in any::<bool>(),
    ) {
        let mut args = vec!["klayer".to_string(), "train".to_string(), "--no-download".to_string()];
        for (i, v) in picks {
            args.push(format!("{}={v}", TRAIN_FLAGS[i]));
        }
        for (i, j) in choices {
            let (flag, values) = CHOICES[i];
            args.push(flag.to_string());
            args.push(values[j % values.len()].to_string());
        }
        if let Some(h) = hidden {
            args.push(format!("--hidden={h}"));
        }
        if f64 {
            args.push("--f64".to_string());
        }
        let err = check(&args);
        assert_names_a_flag(&args, err);
    }

    #[test]
    fn random_gradcheck_and_bench_flags_never_panic(
        gc in proptest::collection::vec((0usize..6, number()), 0..5),
        bench in proptest::collection::vec((0usize..5, number()), 0..5),
        hidden in proptest::option::of(hidden()),
        bn in 0usize..3,
    ) {
        let bn = ["before", "after", "none"][bn];
        let gflags = ["--features", "--images", "--lambda", "--h", "--tol", "--seed"];
        let mut args = vec!["klayer".to_string(), "gradcheck".to_string(), format!("--bn={bn}")];
        for (i, v) in gc {
            args.push(format!("{}={v}", gflags[i]));
        }
        if let Some(h) = &hidden {
            args.push(format!("--hidden={h}"));
        }
        let err = check(&args);
        assert_names_a_flag(&args, err);

        let bflags = ["--batch", "--steps", "--warmup", "--images", "--seed"];
        let mut args = vec!["klayer".to_string(), "bench".to_string(), format!("--bn={bn}")];
        for (i, v) in bench {
            args.push(format!("{}={v}", bflags[i]));
        }
        if let Some(h) = &hidden {
            args.push(format!("--hidden={h}"));
        }
        let err = check(&args);
        assert_names_a_flag(&args, err);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_sweep_lists_and_shards_never_panic(
        lists in proptest::collection::vec((0usize..4, proptest::collection::vec(number(), 1..4)), 0..4),
        shard in proptest::option::of((number(), number())),
        hidden in proptest::option::of(hidden()),
    ) {
        let flags = ["--lambda", "--sig", "--seeds", "--n-s"];
        let mut args = vec!["klayer".to_string(), "sweep".to_string(), "--list".to_string()];
        for (i, values) in lists {
            args.push(format!("{}={}", flags[i], values.join(",")));
        }
        if let Some((i, n)) = shard {
            args.push(format!("--shard={i}/{n}"));
        }
        if let Some(h) = hidden {
            args.push(format!("--hidden={h}"));
        }
        let err = check(&args);
        assert_names_a_flag(&args, err);
    }
}

#[test]
fn the_extreme_values_of_the_issue_are_refused_by_the_checks() {
    let refused = |line: &str, needle: &str| {
        let args: Vec<String> = line.split_whitespace().map(String::from).collect();
        let err = check(&args).unwrap_or_else(|| panic!("{line}: accepted"));
        assert!(err.contains(needle), "{line}: {err}");
    };
    refused("klayer train --n-s 4611686018427387904 --cycles 2", "--n-s");
    refused("klayer train --n-s 9223372036854775808 --cycles 2", "--n-s");
    refused("klayer train --n-s 18446744073709551615", "--n-s");
    refused("klayer train --cycles 4294967296 --n-s 1", "--n-s");
    refused("klayer train --hidden 18446744073709551615", "--hidden");
    refused("klayer train --hidden 100000000", "--hidden");
    refused("klayer gradcheck --hidden 18446744073709551615", "--hidden");
    refused("klayer bench --hidden 18446744073709551615", "--hidden");
    refused("klayer bench --images 100000000", "--images");
    refused(
        "klayer train --bn-stats precise --precise-batches 18446744073709551615",
        "--precise-batches",
    );
    refused("klayer gradcheck --images 100000", "--images");
}
