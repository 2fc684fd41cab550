//! `klayer train --save FILE` and `klayer eval --load FILE`: a trained network to a checkpoint
//! file and back (see [`klayer::checkpoint`]).

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use klayer::checkpoint::{self, InputNorm};
use klayer::data::{
    normalise, read_batch, read_fashion_dir, DataSource, LoadOptions, Split, TEST_FILE,
};
use klayer::net::Network;
use klayer::Result;

/// Flags of `klayer eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The checkpoint, written by `klayer train --save FILE`.
    #[arg(long, value_name = "FILE")]
    load: PathBuf,
    /// The data set whose test images are classified: cifar10 or fashion-mnist.
    #[arg(long, default_value = "cifar10", value_parser = crate::args::dataset)]
    dataset: DataSource,
    /// The data set's directory [default: $KLAYER_DATA, then ./data/… (see `train --help`),
    /// else downloaded].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Print a one-line JSON summary on stdout.
    #[arg(long)]
    json: bool,
}

/// Saves the network trained on `data` with the normalisation of its inputs.
pub fn save<T: klayer::Scalar>(path: &Path, net: &Network<T>, data: &Split<T>) -> Result<()> {
    let norm = InputNorm {
        mean: data.mean.clone(),
        std: data.std.clone(),
    };
    checkpoint::save(path, net, Some(&norm))?;
    eprintln!("saved the network to {}", path.display());
    Ok(())
}

/// Evaluates a saved network on the test images of `--dataset`, normalised as the checkpoint
/// says,
/// with the BN statistics it was saved with.
pub fn run(args: &EvalArgs) -> Result<()> {
    let mut ck = checkpoint::load::<f32>(&args.load)?;
    let norm = ck.input.ok_or_else(|| klayer::Error::Checkpoint {
        path: args.load.clone(),
        reason: "it holds no input normalisation (input.mean, input.std) to evaluate images with"
            .into(),
    })?;
    let opts = LoadOptions {
        path: args.data.clone(),
        ..LoadOptions::new(args.dataset)
    };
    let dir = opts.data_dir()?;
    let raw = match args.dataset {
        DataSource::Cifar10 => read_batch(dir.join(TEST_FILE))?,
        DataSource::FashionMnist => read_fashion_dir(&dir, true)?.1,
    };
    if norm.mean.len() != raw.shape.dim() {
        return Err(klayer::Error::Checkpoint {
            path: args.load.clone(),
            reason: format!(
                "its network takes {} features per image, but {} images have {} ({}); \
                 evaluate it on the data set it was trained on (--dataset)",
                norm.mean.len(),
                args.dataset,
                raw.shape.dim(),
                raw.shape
            ),
        });
    }
    let test = normalise::<f32>(&raw.pixels, &raw.labels, &norm.mean, &norm.std)?;
    let sums = ck.net.loss_sums(test.x.view(), &test.y)?;
    let (acc, loss) = (sums.accuracy(), sums.mean_loss());
    if args.json {
        println!(
            "{}",
            json!({ "test_acc": acc, "test_loss": loss, "images": test.len() })
        );
    } else {
        println!(
            "{}: test accuracy {:.2} % (loss {loss:.4}) on {} images",
            ck.net.describe(),
            100.0 * acc,
            test.len()
        );
    }
    Ok(())
}
