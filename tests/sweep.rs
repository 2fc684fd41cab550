//! Seeds in parallel and `klayer sweep`: a seed's history is the same whether it trains alone
//! or beside others; a sweep killed midway loses no finished run and re-running it finishes
//! the grid without duplicates; a half-written last line is never read and is repaired;
//! shards cover the grid exactly once; bad input gets a clear message and the right exit code.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use klayer::data::{LoadOptions, Split};
use klayer::experiments::sweep::{self, read_records, Record, SweepFile};
use klayer::experiments::{run_seeds, Run, Scale};
use klayer::train::{History, LrSchedule};

/// `klayer args` with `KLAYER_DATA` set to `data` (or to a folder that does not exist).
fn spawn(args: &[&str], data: Option<&Path>) -> Child {
    Command::new(env!("CARGO_BIN_EXE_klayer"))
        .args(args)
        .env(
            "KLAYER_DATA",
            data.unwrap_or(Path::new("/nonexistent/klayer-test-data")),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the klayer binary runs")
}

/// Runs `klayer args` to its end; a run longer than two minutes is killed and fails the test.
fn klayer(args: &[&str], data: Option<&Path>) -> Output {
    let mut child = spawn(args, data);
    let started = Instant::now();
    while child.try_wait().expect("waiting for klayer").is_none() {
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("klayer {args:?} still ran after 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("klayer's output")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_fails(out: &Output, code: i32, needle: &str) {
    let err = stderr(out);
    assert!(!err.contains("panicked"), "panicked: {err}");
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {err}");
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
}

fn assert_succeeds(out: &Output) {
    assert!(out.status.success(), "failed: {}", stderr(out));
}

/// A history without its wall times, which are all that may differ between two runs of the
/// same settings and seed.
fn untimed(h: &History) -> History {
    History {
        train_seconds: 0.0,
        eval_seconds: 0.0,
        ..h.clone()
    }
}

#[test]
fn seeds_trained_concurrently_give_the_histories_of_their_runs_alone() {
    let Some(dir) = common::cifar10_dir() else {
        return;
    };
    let opts = LoadOptions {
        path: Some(dir),
        n_train: Some(1_000),
        n_val: 200,
        n_test: Some(200),
        download: false,
        ..LoadOptions::default()
    };
    let data = Split::<f32>::load(&opts).unwrap();
    let scale = Scale {
        source: klayer::data::DataSource::Cifar10,
        n_train: Some(1_000),
        n_val: 200,
        n_test: Some(200),
        seeds: 3,
        quick: true,
    };
    let run = Run::new([30, 20], &scale)
        .schedule(LrSchedule::Cyclic {
            eta_min: 1e-5,
            eta_max: 1e-1,
            n_s: 20,
            cycles: 1,
            decay: 1.0,
        })
        .checked()
        .unwrap();
    let together = run_seeds(&run, [0, 1, 2], &data).unwrap();
    assert_eq!(together.len(), 3);
    for (s, h) in [0u64, 1, 2].into_iter().zip(&together) {
        let alone = run.clone().seed(s).train(&data).unwrap();
        assert_eq!(alone.steps, 40);
        assert!(alone.test_acc().is_some());
        // Every field: curves, learning rates, mini-batch losses, final metrics.
        assert_eq!(untimed(h), untimed(&alone), "seed {s}");
    }
    // The seeds really differ, so the comparison above would see a mix-up of seeds.
    assert_ne!(untimed(&together[0]), untimed(&together[1]));
}

/// Tiny runs for the command line: 500 images, 10 steps, a net of 20 units.
fn tiny() -> Vec<&'static str> {
    [common::TINY_RUN, &["--hidden", "20"]].concat()
}

fn with(base: &[&str], extra: &[&str]) -> Vec<String> {
    base.iter().chain(extra).map(|s| s.to_string()).collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn train_with_seeds_writes_every_seeds_history_as_its_single_run_does() {
    let Some(dir) = common::cifar10_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let all = tmp.path().join("all.json");
    let args = with(
        &["train"],
        &[&tiny()[..], &["--seeds", "2,0", "--json", "--history"]].concat(),
    );
    let mut args = args;
    args.push(all.to_str().unwrap().into());
    let out = klayer(&strs(&args), Some(&dir));
    assert_succeeds(&out);
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "two runs and the summary: {lines:?}");
    assert_eq!(
        (lines[0]["seed"].as_u64(), lines[1]["seed"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(lines[2]["test_acc"]["n"], 2);
    // Every progress line of concurrent runs says whose it is.
    let err = stderr(&out);
    assert!(
        err.lines()
            .filter(|l| l.contains("step "))
            .all(|l| l.starts_with("[seed 2] ") || l.starts_with("[seed 0] ")),
        "{err}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&fs::read(&all).unwrap()).unwrap();
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    let one = tmp.path().join("one.json");
    let mut single = with(
        &["train"],
        &[&tiny()[..], &["--seed", "0", "--history"]].concat(),
    );
    single.push(one.to_str().unwrap().into());
    assert_succeeds(&klayer(&strs(&single), Some(&dir)));
    let alone: serde_json::Value = serde_json::from_slice(&fs::read(&one).unwrap()).unwrap();
    let strip = |v: &serde_json::Value| {
        let mut v = v.clone();
        v["history"]["train_seconds"] = 0.into();
        v["history"]["eval_seconds"] = 0.into();
        v
    };
    // Seed 0 came second in --seeds: its entry is the whole file of `--seed 0`.
    assert_eq!(strip(&runs[1]), strip(&alone));
    assert_eq!(runs[0]["net"]["seed"], 2);
}

/// A sweep of 3 lambdas × 2 seeds whose runs take long enough to kill it midway.
fn slow_grid(out: &Path) -> Vec<String> {
    let mut flags = common::TINY_RUN.to_vec();
    // 300 steps a run instead of 10: long enough to kill the sweep midway.
    let n_s = flags
        .iter()
        .position(|&f| f == "--n-s")
        .expect("TINY_RUN sets --n-s")
        + 1;
    flags[n_s] = "150";
    flags.extend([
        "--hidden",
        "50,50",
        "--lambda",
        "0.001,0.005,0.01",
        "--seeds",
        "0,1",
        "--out",
    ]);
    let mut v = with(&["sweep"], &flags);
    v.push(out.to_str().unwrap().into());
    v
}

fn keys(path: &Path) -> Vec<String> {
    read_records(path)
        .unwrap()
        .iter()
        .map(Record::key)
        .collect()
}

#[test]
fn a_killed_sweep_resumes_without_losing_or_repeating_a_run() {
    let Some(dir) = common::cifar10_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("runs.jsonl");
    let args = slow_grid(&out);
    let mut child = spawn(&strs(&args), Some(&dir));
    let started = Instant::now();
    // Kill it as soon as the first run is recorded.
    while fs::read(&out).map_or(true, |b| !b.contains(&b'\n')) {
        assert!(child.try_wait().unwrap().is_none(), "the sweep ended early");
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no run finished"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let written = fs::read_to_string(&out).unwrap();
    // The complete lines (a kill can land in the middle of writing a second one).
    let before = &written[..written.rfind('\n').unwrap() + 1];
    let finished_before: Vec<&str> = before.lines().collect();
    assert!(
        (1..6).contains(&finished_before.len()),
        "killed after {} of 6 runs",
        finished_before.len()
    );
    // A kill in the middle of a write leaves a line without its end; make sure there is one.
    fs::write(&out, format!("{before}{{\"label\":\"hidden 50,50 · bn bef")).unwrap();
    assert_eq!(read_records(&out).unwrap().len(), finished_before.len());

    let rerun = klayer(&strs(&args), Some(&dir));
    assert_succeeds(&rerun);
    let err = stderr(&rerun);
    assert!(
        err.contains(&format!("{} already in", finished_before.len())),
        "{err}"
    );
    assert!(err.contains("removed a last line cut short"), "{err}");
    let after = fs::read_to_string(&out).unwrap();
    assert!(after.ends_with('\n'));
    assert!(!after.contains("bn bef\""), "the cut line is gone");
    // Every run once, and the runs finished before the kill kept byte for byte.
    let ks = keys(&out);
    assert_eq!(ks.len(), 6, "{after}");
    assert_eq!(ks.iter().collect::<HashSet<_>>().len(), 6);
    assert!(after.starts_with(&finished_before.join("\n")));
    for line in after.lines() {
        serde_json::from_str::<Record>(line).expect("every line is a record");
    }
    // A third run has nothing left to do, and the summary has the 3 settings × 2 seeds.
    let again = klayer(&strs(&args), Some(&dir));
    assert_succeeds(&again);
    assert!(
        stderr(&again).contains("6 already in"),
        "{}",
        stderr(&again)
    );
    assert_eq!(keys(&out).len(), 6);
    let table = sweep::summarize(&read_records(&out).unwrap());
    assert_eq!(table.len(), 3);
    assert!(table.iter().all(|s| s.seeds.len() == 2));
    let summary = klayer(&["sweep", "--summary", out.to_str().unwrap()], None);
    assert_succeeds(&summary);
    assert_eq!(
        stdout(&summary).lines().count(),
        2 + 3,
        "{}",
        stdout(&summary)
    );
    assert!(stdout(&summary).contains("lambda 0.005"));
}

#[test]
fn runs_of_another_grid_in_the_file_are_not_taken_for_this_ones() {
    let Some(dir) = common::cifar10_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("runs.jsonl");
    let o = out.to_str().unwrap();
    let first = with(
        &["sweep"],
        &[&tiny()[..], &["--seeds", "0,1", "--out", o]].concat(),
    );
    assert_succeeds(&klayer(&strs(&first), Some(&dir)));
    assert_eq!(keys(&out).len(), 2);
    // The same lambda and seeds with one other setting (--n-s 6): nothing is done yet.
    let mut other: Vec<String> = first.clone();
    let at = other.iter().position(|a| a == "--n-s").unwrap();
    other[at + 1] = "6".into();
    other.push("--list".into());
    let listed = klayer(&strs(&other), None);
    assert_succeeds(&listed);
    let text = stdout(&listed);
    assert_eq!(
        text.lines().filter(|l| l.contains(" todo ")).count(),
        2,
        "{text}"
    );
    // And the first grid's own listing marks both of its runs done.
    let mut same = first.clone();
    same.push("--list".into());
    let text = stdout(&klayer(&strs(&same), None));
    assert_eq!(
        text.lines().filter(|l| l.contains(" done ")).count(),
        2,
        "{text}"
    );
}

fn listed_keys(args: &[&str]) -> Vec<(usize, String)> {
    let out = klayer(args, None);
    assert_succeeds(&out);
    stdout(&out)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["index"].as_u64().unwrap() as usize,
                v["key"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

const GRID: &[&str] = &[
    "sweep",
    "--list",
    "--json",
    "--lambda",
    "0.001,0.01,0.1",
    "--sig",
    "he,1e-3",
    "--hidden",
    "50,50",
    "--hidden",
    "20",
    "--bn",
    "before,none",
    "--seeds",
    "0,1",
];

#[test]
fn the_shards_of_a_grid_together_hold_each_run_exactly_once() {
    let whole = listed_keys(GRID);
    assert_eq!(whole.len(), 3 * 2 * 2 * 2 * 2);
    let all: BTreeSet<&String> = whole.iter().map(|(_, k)| k).collect();
    assert_eq!(all.len(), whole.len(), "the grid's keys are distinct");
    for n in [1, 2, 5, 48] {
        let mut seen: Vec<String> = Vec::new();
        for i in 1..=n {
            let shard = format!("{i}/{n}");
            let part = listed_keys(&[GRID, &["--shard", &shard]].concat());
            assert!(!part.is_empty(), "shard {shard} is empty");
            // The same shard twice is the same part (a deterministic partition).
            assert_eq!(part, listed_keys(&[GRID, &["--shard", &shard]].concat()));
            seen.extend(part.into_iter().map(|(_, k)| k));
        }
        assert_eq!(seen.len(), whole.len(), "{n} shards");
        let union: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(union, all, "{n} shards cover the grid exactly");
    }
}

#[test]
fn a_spec_file_gives_the_same_grid_as_the_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("grid.json");
    fs::write(
        &spec,
        r#"{"lambda": [0.001, 0.01, 0.1], "sig": ["he", 1e-3], "hidden": [[50, 50], [20]],
            "bn": ["before", "none"], "seeds": [0, 1], "n_s": 100}"#,
    )
    .unwrap();
    let from_spec = listed_keys(&[
        "sweep",
        "--list",
        "--json",
        "--spec",
        spec.to_str().unwrap(),
    ]);
    let from_flags = listed_keys(&[GRID, &["--n-s", "100"]].concat());
    assert_eq!(from_spec, from_flags);
    // n_s is part of the settings: without it the keys differ.
    assert_ne!(from_spec, listed_keys(GRID));
}

#[test]
fn bad_sweep_input_is_one_clear_message_with_its_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let o = tmp.path().join("o.jsonl");
    let o = o.to_str().unwrap();
    let run = |extra: &[&str]| klayer(&[&["sweep", "--out", o], extra].concat(), None);
    for (shard, says) in [
        ("0/3", "I must be from 1 to N = 3"),
        ("4/3", "I must be from 1 to N = 3"),
        ("1/0", "N must be at least 1"),
        ("2", "give it as I/N"),
        ("a/3", "not a whole number"),
        ("3/4", "fewer than the 4 parts"),
    ] {
        assert_fails(&run(&["--seeds", "0,1,2", "--shard", shard]), 2, says);
    }
    assert_fails(
        &run(&["--bn", "none", "--bn-stats", "precise"]),
        2,
        "the grid is empty",
    );
    assert_fails(&run(&["--seeds", "1,2,1"]), 2, "seed 1 is listed twice");
    assert_fails(&run(&["--lambda", "0.01,-1"]), 2, "--lambda");
    assert_fails(&run(&["--sig", "he,big"]), 2, "neither a number nor `he`");
    assert_fails(&run(&["--tta", "0.5"]), 2, "add adaptive to --bn-stats");
    let spec = tmp.path().join("spec.json");
    let spec_s = spec.to_str().unwrap();
    let with_spec = |text: &str| {
        fs::write(&spec, text).unwrap();
        klayer(&["sweep", "--out", o, "--spec", spec_s], None)
    };
    assert_fails(&with_spec("{\"lambda\": [0.01,"), 2, "not valid JSON");
    assert_fails(&with_spec("[0.01]"), 2, "must be a JSON object");
    assert_fails(
        &with_spec("{\"lambda\": []}"),
        2,
        "`lambda` is an empty list",
    );
    assert_fails(&with_spec("{\"lamda\": [0.1]}"), 2, "lamda");
    assert_fails(&with_spec("{\"cycles\": [1, 2]}"), 2, "cycles");
    assert_fails(
        &klayer(
            &["sweep", "--out", o, "--spec", "/nonexistent/spec.json"],
            None,
        ),
        2,
        "cannot read it",
    );
    // The grid in the spec file or as flags, not both.
    assert_fails(
        &klayer(
            &["sweep", "--out", o, "--spec", spec_s, "--lambda", "0.1"],
            None,
        ),
        2,
        "cannot be used with",
    );
    assert_fails(
        &klayer(&["sweep", "--out", "/nonexistent/dir/runs.jsonl"], None),
        4,
        "/nonexistent/dir",
    );
    assert_fails(
        &klayer(&["sweep", "--out", tmp.path().to_str().unwrap()], None),
        4,
        "is a directory",
    );
    assert_fails(&klayer(&["sweep"], None), 2, "--out");
    assert_fails(&run(&["--json"]), 2, "applies to --summary and --list");
    assert_fails(
        &klayer(&["sweep", "--summary", "/nonexistent/runs.jsonl"], None),
        2,
        "no such file",
    );
    assert_fails(
        &klayer(&["train", "--seeds", "0,1", "--seed", "2"], None),
        2,
        "cannot be used with",
    );
    assert_fails(
        &klayer(&["train", "--seeds", "3,3"], None),
        2,
        "listed twice",
    );
    assert_fails(&klayer(&["train", "--seeds", ""], None), 2, "--seeds");
    // Nothing was written by any of these.
    assert!(!Path::new(o).exists());
}

#[test]
fn a_half_written_last_line_is_never_read_and_opening_repairs_it() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("runs.jsonl");
    let sizes = sweep::DataSizes {
        dataset: klayer::data::DataSource::Cifar10,
        n_train: 10,
        n_val: 5,
        n_test: 5,
    };
    let record = |seed: u64| {
        let net = klayer::net::NetConfig::new(&[5]).seed(seed);
        let train = klayer::train::TrainConfig {
            seed,
            ..klayer::train::TrainConfig::default()
        };
        Record::new(&net, &train, sizes, &History::default())
    };
    let line = |r: &Record| serde_json::to_string(r).unwrap() + "\n";
    let full = line(&record(0)) + &line(&record(1));
    let cut = &line(&record(2)).into_bytes()[..40];
    fs::write(
        &path,
        [format!("{full}not a record\n").as_bytes(), cut].concat(),
    )
    .unwrap();
    // Read: the two records; the bad complete line is skipped, the cut one never read.
    let read = read_records(&path).unwrap();
    assert_eq!(read, vec![record(0), record(1)]);
    assert_eq!(
        fs::read(&path).unwrap().len(),
        full.len() + 13 + 40,
        "reading changes nothing"
    );
    // Open: the cut line goes, every complete line stays; the next record is whole.
    let (file, found) = SweepFile::open(&path).unwrap();
    assert_eq!(found, read);
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        format!("{full}not a record\n")
    );
    file.append(&record(3)).unwrap();
    assert_eq!(
        read_records(&path).unwrap(),
        vec![record(0), record(1), record(3)]
    );
    // A run recorded twice counts once in the summary.
    file.append(&record(3)).unwrap();
    let table = sweep::summarize(&read_records(&path).unwrap());
    assert_eq!(table.len(), 1);
    assert_eq!(table[0].seeds, [0, 1, 3]);
}
