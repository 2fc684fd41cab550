//! The IDX format of MNIST and Fashion-MNIST: a header, then the values of an n-dimensional
//! array in row-major order.
//!
//! The header is a magic number of four bytes — two zero bytes, the value type (`0x08` for
//! unsigned bytes, the only type these data sets use) and the number of dimensions — followed
//! by each dimension's size as a big-endian `u32`. A file may be gzipped (the official files
//! are); it is then decompressed on reading, up to [`MAX_IDX_BYTES`].
//!
//! Reading never panics on bad input: a missing, truncated, overlong, non-IDX or wrongly
//! shaped file, and a label outside the classes, are each an [`Error::BadDataFile`] whose
//! message names the file, says what is wrong with it and how to get a good copy.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use byteorder::{BigEndian, ReadBytesExt};

use super::ImageShape;
use crate::{Error, Result};

/// The type byte of unsigned-byte values (the third byte of the magic number).
pub const IDX_UBYTE: u8 = 0x08;
/// Largest file (after decompression) that is read: 256 MiB, far above the 47 MB of
/// Fashion-MNIST's training images, so that a damaged or hostile `.gz` cannot fill memory.
pub const MAX_IDX_BYTES: u64 = 1 << 28;

/// An IDX array of unsigned bytes: its dimensions and its values, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idx {
    /// The size of each dimension, outermost first.
    pub dims: Vec<usize>,
    /// The `dims.iter().product()` values.
    pub data: Vec<u8>,
}

/// Parses the bytes of an (already decompressed) IDX file of unsigned bytes.
///
/// Errors (as text, for [`Error::BadDataFile`]): fewer bytes than the header, a magic number
/// that is not `00 00 08 nd` with `nd` ≥ 1, or a data part shorter or longer than the
/// dimensions say.
///
/// # Example
/// ```
/// use klayer::data::parse_idx;
/// let file = [0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6];
/// let idx = parse_idx(&file).unwrap();
/// assert_eq!((idx.dims, idx.data), (vec![2, 3], vec![1, 2, 3, 4, 5, 6]));
/// assert!(parse_idx(&file[..17]).unwrap_err().contains("truncated"));
/// ```
pub fn parse_idx(bytes: &[u8]) -> std::result::Result<Idx, String> {
    let mut header = bytes;
    let truncated = |what: &str| {
        format!(
            "the file ends inside its header ({what}; {} bytes in all): it is truncated or \
             not an IDX file",
            bytes.len()
        )
    };
    let magic = header
        .read_u32::<BigEndian>()
        .map_err(|_| truncated("no 4-byte magic number"))?;
    let [z0, z1, kind, ndims] = magic.to_be_bytes();
    if z0 != 0 || z1 != 0 || kind != IDX_UBYTE || ndims == 0 {
        return Err(format!(
            "magic number {magic:#010x}, expected 0x000008nn (unsigned bytes in nn ≥ 1 \
             dimensions): it is not an IDX file of bytes"
        ));
    }
    let mut dims = Vec::with_capacity(ndims as usize);
    for d in 0..ndims {
        let size = header
            .read_u32::<BigEndian>()
            .map_err(|_| truncated(&format!("size of dimension {} of {ndims} missing", d + 1)))?;
        dims.push(size as usize);
    }
    let expected = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n as u64 <= MAX_IDX_BYTES)
        .ok_or_else(|| format!("dimensions {dims:?} describe more than {MAX_IDX_BYTES} values"))?;
    let data = header;
    if data.len() != expected {
        let how = if data.len() < expected {
            "it is truncated"
        } else {
            "it has trailing bytes; not an intact IDX file"
        };
        return Err(format!(
            "dimensions {dims:?} need {expected} bytes of values, the file has {}: {how}",
            data.len()
        ));
    }
    Ok(Idx {
        dims,
        data: data.to_vec(),
    })
}

/// The bytes of the file at `path`, decompressed if they are gzipped (by content, not name),
/// at most [`MAX_IDX_BYTES`] of them.
pub(crate) fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let bad = |reason: String| Error::BadDataFile {
        path: path.to_path_buf(),
        reason,
    };
    let meta = fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => bad("no such file".into()),
        _ => Error::DataUnreadable {
            path: path.to_path_buf(),
            source: e,
        },
    })?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    if meta.len() > MAX_IDX_BYTES {
        return Err(bad(format!(
            "{} bytes, more than the {MAX_IDX_BYTES} an IDX file of this data set may have",
            meta.len()
        )));
    }
    let raw = fs::read(path).map_err(|source| Error::DataUnreadable {
        path: path.to_path_buf(),
        source,
    })?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(raw.as_slice())
        .take(MAX_IDX_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            bad(format!(
                "gzipped, but it does not decompress ({e}): the download was cut short or the \
                 file is damaged"
            ))
        })?;
    if out.len() as u64 > MAX_IDX_BYTES {
        return Err(bad(format!(
            "decompresses to more than {MAX_IDX_BYTES} bytes: not an IDX file of this data set"
        )));
    }
    Ok(out)
}

/// Reads the IDX file at `path` (gzipped or not).
///
/// Errors: [`Error::BadDataFile`] if it is missing, does not decompress, or is not a whole
/// IDX file of bytes ([`parse_idx`]); [`Error::DataUnreadable`] if it cannot be read.
pub fn read_idx(path: impl AsRef<Path>) -> Result<Idx> {
    let path = path.as_ref();
    parse_idx(&read_maybe_gz(path)?).map_err(|reason| Error::BadDataFile {
        path: path.to_path_buf(),
        reason,
    })
}

/// Checks that an IDX array holds grey images of `shape` (dimensions `[n, height, width]`;
/// `shape` has one channel) and returns their number.
pub(crate) fn check_images(idx: &Idx, shape: ImageShape) -> std::result::Result<usize, String> {
    let want = [shape.height, shape.width];
    match idx.dims.split_first() {
        Some((&n, rest)) if rest == want && shape.channels == 1 => Ok(n),
        _ => Err(format!(
            "dimensions {:?}, expected [n, {}, {}]: these are not {shape} images",
            idx.dims, shape.height, shape.width
        )),
    }
}

/// Checks that an IDX array is a list of labels, each below `classes`, and returns their
/// number.
pub(crate) fn check_labels(idx: &Idx, classes: usize) -> std::result::Result<usize, String> {
    if idx.dims.len() != 1 {
        return Err(format!(
            "dimensions {:?}, expected [n]: this is not a file of labels",
            idx.dims
        ));
    }
    if let Some((i, &l)) = idx
        .data
        .iter()
        .enumerate()
        .find(|(_, &l)| l as usize >= classes)
    {
        return Err(format!(
            "label {l} at position {i} is not a class (0..={}); the file is corrupt",
            classes - 1
        ));
    }
    Ok(idx.dims[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, IDX_UBYTE, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn reads_dimensions_big_endian() {
        let data: Vec<u8> = (0..2 * 300).map(|i| i as u8).collect();
        let idx = parse_idx(&file(&[2, 300], &data)).unwrap();
        assert_eq!(idx.dims, vec![2, 300]);
        assert_eq!(idx.data, data);
    }

    #[test]
    fn every_damaged_header_is_a_message_not_a_panic() {
        let good = file(&[3, 2], &[1; 6]);
        for cut in 0..good.len() {
            let err = parse_idx(&good[..cut]).unwrap_err();
            assert!(err.contains("truncated"), "cut at {cut}: {err}");
        }
        let long = [good.clone(), vec![0]].concat();
        assert!(parse_idx(&long).unwrap_err().contains("trailing"));
        for magic in [[0, 0, 9, 2], [1, 0, 8, 2], [0, 0, 8, 0], [0x1f, 0x8b, 8, 0]] {
            let mut bad = good.clone();
            bad[..4].copy_from_slice(&magic);
            let err = parse_idx(&bad).unwrap_err();
            assert!(err.contains("magic number"), "{magic:?}: {err}");
        }
        let huge = file(&[u32::MAX, u32::MAX, u32::MAX], &[]);
        assert!(parse_idx(&huge).unwrap_err().contains("more than"));
    }

    #[test]
    fn shapes_and_labels_are_checked() {
        let images = parse_idx(&file(&[2, 28, 28], &[0; 2 * 784])).unwrap();
        assert_eq!(check_images(&images, ImageShape::FASHION_MNIST), Ok(2));
        let err = check_images(&images, ImageShape::CIFAR10).unwrap_err();
        assert!(err.contains("[n, 32, 32]"), "{err}");
        assert!(check_labels(&images, 10)
            .unwrap_err()
            .contains("not a file of labels"));
        let labels = parse_idx(&file(&[3], &[0, 9, 10])).unwrap();
        let err = check_labels(&labels, 10).unwrap_err();
        assert!(err.contains("label 10 at position 2"), "{err}");
        assert!(check_images(&labels, ImageShape::FASHION_MNIST).is_err());
    }

    #[test]
    fn gzipped_and_plain_files_read_alike_and_bad_gzip_is_reported() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let bytes = file(&[4], &[1, 2, 3, 4]);
        let plain = dir.path().join("plain");
        fs::write(&plain, &bytes).unwrap();
        let gz = dir.path().join("labels.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&bytes).unwrap();
        let packed = enc.finish().unwrap();
        fs::write(&gz, &packed).unwrap();
        assert_eq!(read_idx(&plain).unwrap(), read_idx(&gz).unwrap());
        fs::write(&gz, &packed[..packed.len() / 2]).unwrap();
        let err = read_idx(&gz).unwrap_err();
        assert!(matches!(err, Error::BadDataFile { .. }), "{err:?}");
        assert!(err.to_string().contains("does not decompress"), "{err}");
        let err = read_idx(dir.path().join("missing")).unwrap_err();
        assert!(err.to_string().contains("no such file"), "{err}");
    }
}
