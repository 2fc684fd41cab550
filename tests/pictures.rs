//! The pictures on real CIFAR-10 images (`$KLAYER_DATA`): what each figure plots is checked
//! against the data it was made from.

mod common;

use klayer::data::{LoadOptions, Split, CLASS_NAMES};
use klayer::layers::{softmax, Mode};
use klayer::net::NetConfig;
use klayer::plot::pictures::{
    confident_mistakes, first_layer_weights, most_confident_mistakes, pixels, sample_images,
};
use serde_json::Value;

fn data() -> Option<Split<f32>> {
    let dir = common::cifar10_dir()?;
    let opts = LoadOptions::default()
        .path(dir)
        .download(false)
        .n_train(1_000)
        .n_val(500)
        .n_test(300);
    Some(Split::<f32>::load(&opts).unwrap_or_else(|e| panic!("these tests need CIFAR-10: {e}")))
}

fn json(plot: &plotly::Plot) -> Value {
    serde_json::from_str(&plot.to_json()).unwrap()
}

fn captions(v: &Value) -> Vec<String> {
    v["layout"]["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["text"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn sample_images_show_each_class_with_its_name_and_true_pixels() {
    let Some(data) = data() else { return };
    let v = json(&sample_images(&data, 3).unwrap());
    let names = captions(&v);
    assert_eq!(names.len(), 30);
    for (c, name) in CLASS_NAMES.iter().enumerate() {
        assert!(names[3 * c..3 * c + 3].iter().all(|n| n == name));
    }
    // The top-left pixel of the first tile is the first airplane's, un-normalised.
    let first = data.train.y.iter().position(|&l| l == 0).unwrap();
    let p = pixels(
        data.train.x.row(first).as_slice().unwrap(),
        &data.mean,
        &data.std,
    );
    let z = &v["data"][0]["z"];
    assert_eq!(z[12][2], serde_json::json!([p[0], p[1024], p[2048]]));
}

#[test]
fn first_layer_weights_are_one_image_per_unit() {
    let net = NetConfig::new(&[50, 50]).seed(1).build::<f32>().unwrap();
    let v = json(&first_layer_weights(&net, 20).unwrap());
    assert_eq!(captions(&v).len(), 20);
    assert_eq!(captions(&v)[19], "unit 20");
    let small = NetConfig::new(&[5]).input(4).build::<f32>().unwrap();
    assert!(first_layer_weights(&small, 3).is_err());
}

#[test]
fn most_confident_mistakes_are_captioned_in_order_of_confidence() {
    let Some(data) = data() else { return };
    let mut net = NetConfig::new(&[30]).seed(2).build::<f32>().unwrap();
    // Give BN some statistics so that evaluation mode is meaningful.
    net.forward(data.train.x.view(), Mode::Train).unwrap();
    klayer::bn_stats::update_ema(&mut net, 0.9);
    let v = json(&most_confident_mistakes(&mut net, &data, 6).unwrap());
    let logits = net.forward(data.test.x.view(), Mode::Eval).unwrap();
    let probs = softmax(logits.view()).mapv(f64::from);
    let expected: Vec<String> = confident_mistakes(probs.view(), &data.test.y, 6)
        .iter()
        .map(|m| {
            format!(
                "{}→{}<br>{:.0}%",
                CLASS_NAMES[m.truth],
                CLASS_NAMES[m.predicted],
                100.0 * m.confidence
            )
        })
        .collect();
    assert_eq!(captions(&v), expected);
    // Most confident first.
    let conf: Vec<f64> = confident_mistakes(probs.view(), &data.test.y, 6)
        .iter()
        .map(|m| m.confidence)
        .collect();
    assert!(conf.windows(2).all(|w| w[0] >= w[1]));
}
