//! Pictures of images and of what a network learned: sample images with their class names, the
//! first layer's weights as images, the confusion matrix, and the test images a network got
//! wrong with the most confidence.
//!
//! Images are CIFAR-10 rows (3,072 values, channel-major: 1,024 red, then green, then blue, each
//! 32 × 32 row by row). A grid of them is drawn as one plotly [`Image`] trace (a mosaic with a
//! white border around each tile) with the captions as annotations, so a figure of 100 images
//! stays a single small trace.

use ndarray::{s, Array2, ArrayView1, ArrayView2, Axis};
use plotly::color::Rgb;
use plotly::common::{Anchor, Font, Title};
use plotly::layout::{Annotation, Axis as PlotAxis, AxisConstrain, Layout, Margin};
use plotly::{HeatMap, Image, Plot};

use crate::data::{ImageShape, Split, IMAGE_DIM};
use crate::layers::{softmax, Mode};
use crate::net::Network;
use crate::{Error, Result, Scalar};

/// Pixels between tiles of a grid.
const GAP: usize = 2;
/// Pixels above each tile where its caption goes.
const CAPTION: usize = 12;
/// The largest image grid (screen pixels) drawn at more than the smallest scale: it fits a
/// notebook's output area. Screen pixels per image pixel are between the two GRID_SCALE values.
const GRID_MAX_WIDTH: f64 = 880.0;
const GRID_MAX_HEIGHT: f64 = 1000.0;
const GRID_SCALE: (f64, f64) = (2.0, 4.0);
/// Screen pixels around an image grid, and above it for its title.
const GRID_MARGIN: usize = 8;
const GRID_TITLE: usize = 40;

/// One image as 0–255 channel-major bytes, from a normalised row: `pixel = 255 · (x · std + mean)`
/// with the per-feature `mean` and `std` of the normalisation ([`Split::mean`],
/// [`Split::std`]), clamped to 0–255.
///
/// # Example
/// ```
/// use klayer::plot::pictures::pixels;
/// let row = vec![0.0f32; 3072];
/// let (mean, std) = (vec![0.5; 3072], vec![0.2; 3072]);
/// assert!(pixels(&row, &mean, &std).iter().all(|&p| p == 128));
/// ```
pub fn pixels<T: Scalar>(row: &[T], mean: &[f64], std: &[f64]) -> Vec<u8> {
    row.iter()
        .zip(mean.iter().zip(std))
        .map(|(&x, (&m, &s))| (255.0 * (x.as_f64() * s + m)).round().clamp(0.0, 255.0) as u8)
        .collect()
}

/// A weight vector (or any row) stretched to 0–255: its minimum becomes 0, its maximum 255.
pub fn stretched<T: Scalar>(row: ArrayView1<T>) -> Vec<u8> {
    let (lo, hi) = row
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v.as_f64()), hi.max(v.as_f64()))
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    row.iter()
        .map(|&v| (255.0 * (v.as_f64() - lo) / span).round() as u8)
        .collect()
}

/// The mosaic of CIFAR-10 `images` (each [`IMAGE_DIM`] bytes, channel-major) in rows of
/// `cols` tiles: [`mosaic_of`] with [`ImageShape::CIFAR10`].
///
/// **Panics** if an image does not have [`IMAGE_DIM`] bytes or `cols` is 0.
pub fn mosaic(images: &[Vec<u8>], cols: usize) -> Vec<Vec<Rgb>> {
    mosaic_of(images, ImageShape::CIFAR10, cols)
}

/// The mosaic of `images` of `shape` (each `shape.dim()` bytes, channel-major; one channel is
/// grey, three are red, green and blue) in rows of `cols` tiles, as rows of pixels, with a
/// white border and a white caption band above each tile.
///
/// **Panics** if an image does not have `shape.dim()` bytes, `shape` has neither 1 nor 3
/// channels, or `cols` is 0.
pub fn mosaic_of(images: &[Vec<u8>], shape: ImageShape, cols: usize) -> Vec<Vec<Rgb>> {
    assert!(cols > 0, "a grid needs at least one column");
    assert!(
        shape.channels == 1 || shape.channels == 3,
        "images are grey (1 channel) or colour (3)"
    );
    let rows = images.len().div_ceil(cols).max(1);
    let (tile_w, tile_h) = tile(shape);
    let plane = shape.plane();
    // Offsets of the red, green and blue values of a pixel (all the one grey value).
    let rgb = if shape.channels == 1 {
        [0, 0, 0]
    } else {
        [0, plane, 2 * plane]
    };
    let white = Rgb::new(255, 255, 255);
    let mut z = vec![vec![white; cols * tile_w + GAP]; rows * tile_h];
    for (k, img) in images.iter().enumerate() {
        assert_eq!(
            img.len(),
            shape.dim(),
            "image {k} has {} values, expected {}",
            img.len(),
            shape.dim()
        );
        let (top, left) = ((k / cols) * tile_h + CAPTION, (k % cols) * tile_w + GAP);
        for i in 0..shape.height {
            for j in 0..shape.width {
                let p = i * shape.width + j;
                z[top + i][left + j] = Rgb::new(img[p + rgb[0]], img[p + rgb[1]], img[p + rgb[2]]);
            }
        }
    }
    z
}

/// Width and height of a tile of a grid of images of `shape`: the image, the gap, the caption.
fn tile(shape: ImageShape) -> (usize, usize) {
    (shape.width + GAP, shape.height + GAP + CAPTION)
}

/// A grid of CIFAR-10 images with a caption above each, `cols` per row: [`image_grid_of`]
/// with [`ImageShape::CIFAR10`].
///
/// # Errors
/// If the numbers of images and captions differ, an image is not [`IMAGE_DIM`] bytes, or
/// `cols` is 0.
///
/// # Example
/// ```
/// use klayer::plot::pictures::image_grid;
/// let black = vec![0u8; 3072];
/// let plot = image_grid(&[black.clone(), black], &["a".into(), "b".into()], 2, "two").unwrap();
/// assert!(plot.to_json().contains("\"type\":\"image\""));
/// ```
pub fn image_grid(
    images: &[Vec<u8>],
    captions: &[String],
    cols: usize,
    title: &str,
) -> Result<Plot> {
    image_grid_of(images, ImageShape::CIFAR10, captions, cols, title)
}

/// A grid of images of `shape` (grey or colour) with a caption above each, `cols` per row.
///
/// # Errors
/// If the numbers of images and captions differ, an image is not `shape.dim()` bytes,
/// `shape` has neither 1 nor 3 channels, or `cols` is 0.
///
/// # Example
/// ```
/// use klayer::{data::ImageShape, plot::pictures::image_grid_of};
/// let grey = vec![128u8; 784];
/// let plot = image_grid_of(&[grey], ImageShape::FASHION_MNIST, &["a".into()], 1, "one").unwrap();
/// assert!(plot.to_json().contains("\"type\":\"image\""));
/// assert!(image_grid_of(&[vec![0; 3072]], ImageShape::FASHION_MNIST, &["b".into()], 1, "").is_err());
/// ```
pub fn image_grid_of(
    images: &[Vec<u8>],
    shape: ImageShape,
    captions: &[String],
    cols: usize,
    title: &str,
) -> Result<Plot> {
    if images.len() != captions.len() {
        return Err(Error::Shape(format!(
            "{} images but {} captions",
            images.len(),
            captions.len()
        )));
    }
    if cols == 0 {
        return Err(Error::config("cols", "a grid needs at least one column"));
    }
    if shape.channels != 1 && shape.channels != 3 {
        return Err(Error::Shape(format!(
            "{shape} images: only grey (1 channel) or colour (3) images can be shown"
        )));
    }
    if let Some(k) = images.iter().position(|i| i.len() != shape.dim()) {
        return Err(Error::Shape(format!(
            "image {k} has {} values, expected {} ({shape}, channel-major)",
            images[k].len(),
            shape.dim()
        )));
    }
    let z = mosaic_of(images, shape, cols);
    let (tile_w, tile_h) = tile(shape);
    let (height, width) = (z.len(), z[0].len());
    let mut plot = Plot::new();
    plot.add_trace(Image::new(z).hover_info(plotly::common::HoverInfo::Skip));
    let annotations = captions
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let x = (k % cols) * tile_w + GAP + shape.width / 2;
            let y = (k / cols) * tile_h + CAPTION - 1;
            Annotation::new()
                .text(c)
                .x(x as f64)
                .y(y as f64)
                .y_anchor(Anchor::Bottom)
                .show_arrow(false)
                .font(Font::new().size(9))
        })
        .collect();
    // The figure is the mosaic at `scale` plus fixed margins, and each axis spans the mosaic
    // exactly: no band of empty plot area (plotly keeps an image's pixels square, so a figure of
    // another shape would pad it) and no default margins eating a small grid.
    let scale = (GRID_MAX_WIDTH / width as f64)
        .min(GRID_MAX_HEIGHT / height as f64)
        .clamp(GRID_SCALE.0, GRID_SCALE.1);
    let bare = |range: Vec<f64>| {
        PlotAxis::new()
            .visible(false)
            .range(range)
            .constrain(AxisConstrain::Domain)
    };
    let (w, h) = (width as f64, height as f64);
    plot.set_layout(
        Layout::new()
            .title(Title::with_text(title))
            .x_axis(bare(vec![-0.5, w - 0.5]))
            .y_axis(bare(vec![h - 0.5, -0.5]))
            .annotations(annotations)
            .margin(
                Margin::new()
                    .left(GRID_MARGIN)
                    .right(GRID_MARGIN)
                    .bottom(GRID_MARGIN)
                    .top(GRID_TITLE),
            )
            .width((w * scale).round() as usize + 2 * GRID_MARGIN)
            .height((h * scale).round() as usize + GRID_MARGIN + GRID_TITLE),
    );
    Ok(plot)
}

/// The first `per_class` training images of every class, one row per class, each captioned
/// with its class name.
///
/// # Errors
/// If `per_class` is 0 or some class has fewer training images.
pub fn sample_images<T: Scalar>(data: &Split<T>, per_class: usize) -> Result<Plot> {
    let picks = first_of_each_class(&data.train.y, data.train.classes, per_class)?;
    let images = picks
        .iter()
        .map(|&i| {
            pixels(
                data.train.x.row(i).as_slice().expect("rows are contiguous"),
                &data.mean,
                &data.std,
            )
        })
        .collect::<Vec<_>>();
    let captions = picks
        .iter()
        .map(|&i| class_name(data.source.class_names(), data.train.y[i]))
        .collect::<Vec<_>>();
    image_grid_of(
        &images,
        data.shape,
        &captions,
        per_class,
        "Training images by class",
    )
}

/// The indices of the first `per_class` labels of every class `0..classes`, class by class.
pub fn first_of_each_class(y: &[usize], classes: usize, per_class: usize) -> Result<Vec<usize>> {
    if per_class == 0 {
        return Err(Error::config("per_class", "must be at least 1"));
    }
    let mut picks = Vec::with_capacity(classes * per_class);
    for c in 0..classes {
        let of_c: Vec<usize> = y
            .iter()
            .enumerate()
            .filter(|(_, &l)| l == c)
            .map(|(i, _)| i)
            .take(per_class)
            .collect();
        if of_c.len() < per_class {
            return Err(Error::Shape(format!(
                "class {c} has {} images, fewer than the {per_class} asked for",
                of_c.len()
            )));
        }
        picks.extend(of_c);
    }
    Ok(picks)
}

/// The name of class `c` in `names`, else `class c`.
fn class_name(names: &[&str], c: usize) -> String {
    names
        .get(c)
        .map_or_else(|| format!("class {c}"), |s| s.to_string())
}

/// The weights of the first `count` units of the network's first linear layer, each row of `W`
/// (3,072 values) stretched to 0–255 and shown as an image ("unit 1", …): what each unit
/// responds to.
///
/// # Errors
/// If the first layer is not linear over [`IMAGE_DIM`] inputs, or `count` is 0.
pub fn first_layer_weights<T: Scalar>(net: &Network<T>, count: usize) -> Result<Plot> {
    let w = first_weights(net)?;
    if count == 0 {
        return Err(Error::config("count", "must be at least 1"));
    }
    let n = count.min(w.nrows());
    let images: Vec<Vec<u8>> = (0..n).map(|i| stretched(w.row(i))).collect();
    let captions: Vec<String> = (1..=n).map(|i| format!("unit {i}")).collect();
    image_grid(
        &images,
        &captions,
        n.min(10),
        "First-layer weights as images",
    )
}

fn first_weights<T: Scalar>(net: &Network<T>) -> Result<ArrayView2<'_, T>> {
    match net.layers.first().and_then(|l| l.as_linear()) {
        Some(l) if l.in_features() == IMAGE_DIM => Ok(l.w.view()),
        _ => Err(Error::Shape(format!(
            "the network's first layer must be linear over {IMAGE_DIM} pixels to be shown as images"
        ))),
    }
}

/// Counts `[true class][predicted class]` over the pairs of `truth` and `predicted`.
///
/// # Errors
/// If the lengths differ or a class is not below `classes`.
///
/// # Example
/// ```
/// use klayer::plot::pictures::confusion_counts;
/// let c = confusion_counts(&[0, 0, 1, 2], &[0, 1, 1, 2], 3).unwrap();
/// assert_eq!(c, vec![vec![1, 1, 0], vec![0, 1, 0], vec![0, 0, 1]]);
/// ```
pub fn confusion_counts(
    truth: &[usize],
    predicted: &[usize],
    classes: usize,
) -> Result<Vec<Vec<usize>>> {
    if truth.len() != predicted.len() {
        return Err(Error::Shape(format!(
            "{} true labels but {} predictions",
            truth.len(),
            predicted.len()
        )));
    }
    let mut counts = vec![vec![0; classes]; classes];
    for (&t, &p) in truth.iter().zip(predicted) {
        if t >= classes || p >= classes {
            return Err(Error::Shape(format!(
                "class {} is not below the number of classes {classes}",
                t.max(p)
            )));
        }
        counts[t][p] += 1;
    }
    Ok(counts)
}

/// The confusion matrix as a heat map with the count in every cell: rows are the true classes,
/// columns the predicted ones (CIFAR-10's class names when there are 10 classes).
///
/// # Errors
/// As [`confusion_counts`].
pub fn confusion_matrix(
    truth: &[usize],
    predicted: &[usize],
    classes: usize,
    title: &str,
) -> Result<Plot> {
    let counts = confusion_counts(truth, predicted, classes)?;
    let names: Vec<String> = (0..classes)
        .map(|c| class_name(&crate::data::CLASS_NAMES, c))
        .collect();
    let z: Vec<Vec<f64>> = counts
        .iter()
        .map(|r| r.iter().map(|&c| c as f64).collect())
        .collect();
    let max = z.iter().flatten().copied().fold(0.0, f64::max);
    let mut annotations = Vec::new();
    for (i, row) in counts.iter().enumerate() {
        for (j, &c) in row.iter().enumerate() {
            annotations.push(
                Annotation::new()
                    .text(c.to_string())
                    .x(names[j].as_str())
                    .y(names[i].as_str())
                    .show_arrow(false)
                    .font(Font::new().size(10).color(if (c as f64) > 0.5 * max {
                        "white"
                    } else {
                        "black"
                    })),
            );
        }
    }
    let mut plot = Plot::new();
    plot.add_trace(
        HeatMap::new(names.clone(), names.clone(), z)
            .color_scale(plotly::common::ColorScale::Palette(
                plotly::common::ColorScalePalette::Blues,
            ))
            .reverse_scale(true)
            .hover_template("true %{y}, predicted %{x}: %{z}<extra></extra>"),
    );
    plot.set_layout(
        Layout::new()
            .title(Title::with_text(title))
            .x_axis(PlotAxis::new().title(Title::with_text("predicted class")))
            .y_axis(
                PlotAxis::new()
                    .title(Title::with_text("true class"))
                    .auto_range(true),
            )
            .annotations(annotations)
            .width(640)
            .height(560),
    );
    Ok(plot)
}

/// A misclassified image: its index, true and predicted class, and the probability the network
/// gave its (wrong) prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mistake {
    /// Row of the image in its data set.
    pub index: usize,
    /// The true class.
    pub truth: usize,
    /// The predicted class.
    pub predicted: usize,
    /// Softmax probability of the predicted class.
    pub confidence: f64,
}

/// The `count` misclassified rows of `probs` (softmax probabilities, one row per image) with the
/// highest probability on their predicted class, most confident first (ties by index).
pub fn confident_mistakes(probs: ArrayView2<f64>, truth: &[usize], count: usize) -> Vec<Mistake> {
    let mut mistakes: Vec<Mistake> = probs
        .axis_iter(Axis(0))
        .zip(truth)
        .enumerate()
        .filter_map(|(index, (row, &t))| {
            let (predicted, &confidence) =
                row.iter()
                    .enumerate()
                    .fold((0, &f64::NEG_INFINITY), |best, (j, p)| {
                        if p > best.1 {
                            (j, p)
                        } else {
                            best
                        }
                    });
            (predicted != t).then_some(Mistake {
                index,
                truth: t,
                predicted,
                confidence,
            })
        })
        .collect();
    mistakes.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then(a.index.cmp(&b.index))
    });
    mistakes.truncate(count);
    mistakes
}

/// The `count` test images the network misclassified with the most confidence (evaluation
/// mode), each captioned "true → predicted" over its probability (two lines: a caption on
/// one line is wider than its tile).
///
/// # Errors
/// If the network does not fit the data or `count` is 0.
pub fn most_confident_mistakes<T: Scalar>(
    net: &mut Network<T>,
    data: &Split<T>,
    count: usize,
) -> Result<Plot> {
    if count == 0 {
        return Err(Error::config("count", "must be at least 1"));
    }
    let test = &data.test;
    let mut probs = Array2::<f64>::zeros((test.len(), net.classes()));
    let mut start = 0;
    while start < test.len() {
        let end = (start + crate::net::EVAL_CHUNK).min(test.len());
        let logits = net.forward(test.x.slice(s![start..end, ..]), Mode::Eval)?;
        probs
            .slice_mut(s![start..end, ..])
            .assign(&softmax(logits.view()).mapv(|v| v.as_f64()));
        start = end;
    }
    let mistakes = confident_mistakes(probs.view(), &test.y, count);
    let images: Vec<Vec<u8>> = mistakes
        .iter()
        .map(|m| {
            pixels(
                test.x.row(m.index).as_slice().expect("rows are contiguous"),
                &data.mean,
                &data.std,
            )
        })
        .collect();
    let captions: Vec<String> = mistakes
        .iter()
        .map(|m| {
            format!(
                "{}→{}<br>{:.0}%",
                class_name(data.source.class_names(), m.truth),
                class_name(data.source.class_names(), m.predicted),
                100.0 * m.confidence
            )
        })
        .collect();
    image_grid_of(
        &images,
        data.shape,
        &captions,
        5,
        "Most confident mistakes on the test set (true → predicted)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::IMAGE_SIDE;
    use ndarray::array;

    #[test]
    fn the_mosaic_puts_each_channel_of_each_pixel_in_its_tile() {
        let img = |k: usize| {
            (0..IMAGE_DIM)
                .map(|v| ((v * 7 + k * 13) % 251) as u8)
                .collect::<Vec<u8>>()
        };
        let images = vec![img(0), img(1), img(2)];
        let z = mosaic(&images, 2);
        assert_eq!(z.len(), 2 * (IMAGE_SIDE + GAP + CAPTION));
        assert_eq!(z[0].len(), 2 * (IMAGE_SIDE + GAP) + GAP);
        for (k, im) in images.iter().enumerate() {
            let (top, left) = (
                (k / 2) * (IMAGE_SIDE + GAP + CAPTION) + CAPTION,
                (k % 2) * (IMAGE_SIDE + GAP) + GAP,
            );
            for (i, j) in [(0, 0), (5, 31), (31, 17)] {
                let p = i * IMAGE_SIDE + j;
                assert_eq!(
                    z[top + i][left + j],
                    Rgb::new(im[p], im[1024 + p], im[2048 + p])
                );
            }
        }
        // The empty fourth tile stays white.
        let (top, left) = (IMAGE_SIDE + GAP + 2 * CAPTION, IMAGE_SIDE + 2 * GAP);
        assert_eq!(z[top][left], Rgb::new(255, 255, 255));
    }

    #[test]
    fn pixels_undo_the_normalisation() {
        let mean = vec![0.25; IMAGE_DIM];
        let std = vec![0.5; IMAGE_DIM];
        let mut row = vec![0.0f64; IMAGE_DIM];
        (row[0], row[1], row[2]) = (1.0, -0.5, 3.0);
        let p = pixels(&row, &mean, &std);
        assert_eq!(&p[..4], &[191, 0, 255, 64]);
    }

    #[test]
    fn stretched_weights_span_0_to_255() {
        assert_eq!(
            stretched(array![-2.0f32, 0.0, 2.0].view()),
            vec![0, 128, 255]
        );
    }

    #[test]
    fn confusion_counts_match_a_count_of_the_pairs() {
        let truth: Vec<usize> = (0..500).map(|i| (i * 7) % 10).collect();
        let predicted: Vec<usize> = (0..500).map(|i| (i * 3 + i / 7) % 10).collect();
        let c = confusion_counts(&truth, &predicted, 10).unwrap();
        for (t, row) in c.iter().enumerate() {
            for (p, &count) in row.iter().enumerate() {
                let n = truth
                    .iter()
                    .zip(&predicted)
                    .filter(|&(&a, &b)| a == t && b == p)
                    .count();
                assert_eq!(count, n);
            }
        }
        assert_eq!(c.iter().flatten().sum::<usize>(), 500);
        assert!(confusion_counts(&[0], &[0, 1], 2).is_err());
        assert!(confusion_counts(&[0], &[2], 2).is_err());
    }

    #[test]
    fn the_confusion_matrix_plots_the_counts_with_class_names() {
        let plot = confusion_matrix(&[0, 1, 1, 9], &[0, 1, 2, 9], 10, "c").unwrap();
        let json: serde_json::Value = serde_json::from_str(&plot.to_json()).unwrap();
        assert_eq!(json["data"][0]["x"][3], "cat");
        assert_eq!(json["data"][0]["z"][1][2], 1.0);
        assert_eq!(json["layout"]["annotations"].as_array().unwrap().len(), 100);
    }

    #[test]
    fn confident_mistakes_are_the_wrong_predictions_most_confident_first() {
        let probs = array![
            [0.9, 0.1],   // right
            [0.3, 0.7],   // wrong, 0.7
            [0.95, 0.05], // wrong, 0.95
            [0.4, 0.6],   // right
            [0.2, 0.8],   // wrong, 0.8
        ];
        let m = confident_mistakes(probs.view(), &[0, 0, 1, 1, 0], 2);
        assert_eq!(m.iter().map(|m| m.index).collect::<Vec<_>>(), [2, 4]);
        assert_eq!((m[0].truth, m[0].predicted, m[0].confidence), (1, 0, 0.95));
    }

    #[test]
    fn sample_picks_are_the_first_of_each_class_in_class_order() {
        let y = [1, 0, 1, 2, 0, 2, 1];
        assert_eq!(first_of_each_class(&y, 3, 2).unwrap(), [1, 4, 0, 2, 3, 5]);
        assert!(first_of_each_class(&y, 4, 1).is_err());
    }

    #[test]
    fn a_grid_needs_one_caption_per_image() {
        assert!(image_grid(&[vec![0; IMAGE_DIM]], &[], 1, "t").is_err());
        assert!(image_grid(&[vec![0; 5]], &["x".into()], 1, "t").is_err());
    }

    /// The plot area left inside the figure's margins, and the mosaic's size, of a grid.
    fn grid_geometry(n: usize, cols: usize) -> ((f64, f64), (f64, f64), serde_json::Value) {
        let images = vec![vec![0u8; IMAGE_DIM]; n];
        let captions: Vec<String> = (1..=n).map(|i| format!("unit {i}")).collect();
        let plot = image_grid(&images, &captions, cols, "t").unwrap();
        let json: serde_json::Value = serde_json::from_str(&plot.to_json()).unwrap();
        let layout = &json["layout"];
        let px = |k: &str| layout[k].as_f64().unwrap();
        let margin = |k: &str| layout["margin"][k].as_f64().unwrap();
        let area = (
            px("width") - margin("l") - margin("r"),
            px("height") - margin("t") - margin("b"),
        );
        let z = &json["data"][0]["z"];
        let mosaic = (
            z[0].as_array().unwrap().len() as f64,
            z.as_array().unwrap().len() as f64,
        );
        (area, mosaic, layout.clone())
    }

    #[test]
    fn a_grid_figure_is_its_mosaic_scaled_without_padding_or_tiny_tiles() {
        // One row of 10 (the first-layer weights), 10 rows of 4 (the samples), 3 rows of 5
        // (mistakes), 10 × 10.
        for (n, cols) in [(10, 10), (40, 4), (12, 5), (100, 10)] {
            let ((aw, ah), (mw, mh), layout) = grid_geometry(n, cols);
            let (sx, sy) = (aw / mw, ah / mh);
            // Square pixels that fill the plot area: no blank band above or beside the images.
            assert!(
                (sx - sy).abs() < 0.02 * sx,
                "{n}/{cols}: scales {sx} × {sy}"
            );
            // Legible tiles (at least 2 screen pixels per image pixel) and a figure that fits
            // a notebook.
            assert!((2.0..=4.0).contains(&sx), "{n}/{cols}: scale {sx}");
            assert!(
                layout["width"].as_f64().unwrap() <= 900.0,
                "{n}/{cols}: too wide"
            );
            // The axes span the mosaic exactly (the y axis top-down, as images are).
            assert_eq!(
                layout["xaxis"]["range"],
                serde_json::json!([-0.5, mw - 0.5])
            );
            assert_eq!(
                layout["yaxis"]["range"],
                serde_json::json!([mh - 0.5, -0.5])
            );
            assert!(
                layout["margin"]["t"].as_f64().unwrap() >= 30.0,
                "room for the title"
            );
        }
    }
}
