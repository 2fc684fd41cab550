//! `klayer train --seeds 0,1,2`: the same run once per seed, the seeds concurrently.

use std::collections::HashSet;

use rayon::prelude::*;
use serde_json::json;

use klayer::data::Split;
use klayer::experiments::{Seeds, Summary};
use klayer::train::{train, History};
use klayer::{Error, Result, Scalar};

use crate::{history_doc, json_summary, Outcome, TrainPlan};

/// The seeds of a `--seeds` list (or of a sweep's), checked: at least one, each a whole
/// number within the seed range, none twice.
pub fn seed_list(values: &[usize]) -> Result<Vec<u64>> {
    let seeds = Seeds::new(values).map_err(|e| {
        Error::config(
            "--seeds",
            e.to_string()
                .trim_start_matches("invalid setting `seeds`: ")
                .replace("vec![0, 1, 2] or 0..5", "0,1,2")
                .replace("vec![0] or 0..3", "0,1,2")
                .replace("such as 0..5", "such as 0,1,2"),
        )
    })?;
    let mut seen = HashSet::new();
    if let Some(twice) = seeds.iter().find(|s| !seen.insert(**s)) {
        return Err(Error::config(
            "--seeds",
            format!(
                "seed {twice} is listed twice; each seed is one run, so list it once (e.g. 0,1,2)"
            ),
        ));
    }
    Ok(seeds.to_vec())
}

/// Trains `p` once per seed of `p.seeds`, concurrently on the rayon threads; each run is the
/// run `--seed N` gives (its timings aside). Progress lines start with `[seed N]`; at the end,
/// one line per seed and the mean ± std on stdout (with `--json`: one JSON line per seed as
/// `--json` prints for one run, then one line `{"seeds": …, "test_acc": {n, mean, std, min,
/// max}, "val_acc": {…}, "diverged": K}` with accuracies in %). `--history` gets
/// `{"runs": [R, …]}`, R being what `--history` writes for one run, in the order of `--seeds`.
pub fn run<T: Scalar>(p: &TrainPlan) -> Result<Outcome> {
    let seeds = p.seeds.as_deref().unwrap_or(&[]);
    let cifar = Split::<T>::load(&p.load)?;
    let net = p.net.build::<T>()?;
    eprintln!(
        "training {} ({}) on {} images, validating on {}, {} steps, {}; seeds {} concurrently",
        net.describe(),
        T::NAME,
        cifar.train.len(),
        cifar.val.len(),
        p.train.schedule.total_steps(),
        p.train.bn_stats.label(),
        seeds
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let runs = seeds
        .par_iter()
        .map(|&s| {
            let net_cfg = p.net.clone().seed(s);
            let mut cfg = p.train.clone();
            cfg.seed = s;
            cfg.label = Some(format!("seed {s}"));
            let mut net = net_cfg.build::<T>()?;
            let h = train(&mut net, &cfg, &cifar.train, &cifar.val, Some(&cifar.test))?;
            cfg.label = None;
            Ok((net_cfg, cfg, h))
        })
        .collect::<Result<Vec<_>>>()?;
    if let Some(out) = &p.history {
        let docs: Vec<_> = runs.iter().map(|(n, c, h)| history_doc(n, c, h)).collect();
        let bytes = serde_json::to_vec(&json!({ "runs": docs }))
            .map_err(|e| Error::io(&out.given, e.into()))?;
        out.write(&bytes)?;
    }
    let histories: Vec<History> = runs.iter().map(|r| r.2.clone()).collect();
    let diverged = histories.iter().filter(|h| h.diverged.is_some()).count();
    let (test, val) = (Summary::test_acc(&histories), Summary::val_acc(&histories));
    if p.json {
        for (n, c, h) in &runs {
            println!("{}", json_summary::<T>(n, c, h));
        }
        println!(
            "{}",
            json!({ "seeds": seeds, "test_acc": test, "val_acc": val, "diverged": diverged })
        );
    } else {
        for (n, _, h) in &runs {
            println!("seed {}: {}", n.seed, h.summary());
        }
        println!(
            "{} seeds: test accuracy % {test}; validation % {val}{}",
            seeds.len(),
            if diverged > 0 {
                format!("; {diverged} diverged (left out)")
            } else {
                String::new()
            }
        );
    }
    Ok(if diverged > 0 {
        Outcome::Diverged
    } else {
        Outcome::Done
    })
}
