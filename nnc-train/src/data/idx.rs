//! Reads IDX files, the format of MNIST and Fashion-MNIST, plain or gzip-compressed, and loads
//! MNIST's image and label files as a dataset; also the gzip detection the other loaders share.
//! Only unsigned-byte IDX (type 0x08) of 1 to 4 dimensions is read; nothing is downloaded.

use super::{Column, Dataset};
use crate::Error;
use flate2::read::MultiGzDecoder;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The first two bytes of every gzip stream. Compression is recognised by them, never by the
/// file name, so a renamed or a decompressed-but-not-renamed file still reads.
pub(super) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Where to get MNIST, for the error when its files are missing.
const MNIST_SOURCE: &str = "download the four files train-images-idx3-ubyte.gz, \
    train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from \
    https://yann.lecun.com/exdb/mnist/ or a mirror such as \
    https://ossci-datasets.s3.amazonaws.com/mnist/, or pass the directory that holds them";

/// The contents of an unsigned-byte IDX file: an n-dimensional array of bytes, row-major.
///
/// For MNIST's images the dimensions are `[count, rows, columns]`, for its labels `[count]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idx {
    /// The size of each dimension, outermost first; the first is the number of items.
    pub dims: Vec<usize>,
    /// The values, row-major: `dims.iter().product()` bytes.
    pub data: Vec<u8>,
}

impl Idx {
    /// The number of items: the first dimension (0 if there are no dimensions).
    pub fn count(&self) -> usize {
        self.dims.first().copied().unwrap_or(0)
    }

    /// The bytes per item: the product of the dimensions after the first (1 for a
    /// one-dimensional file such as labels).
    pub fn item_len(&self) -> usize {
        self.dims.iter().skip(1).product()
    }

    /// Item `i` (an image, or a single label), if there is one.
    pub fn item(&self, i: usize) -> Option<&[u8]> {
        let n = self.item_len();
        let start = i.checked_mul(n)?;
        self.data.get(start..start.checked_add(n)?)
    }
}

/// Which half of MNIST [`mnist`] loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The 60,000 training images (`train-*` files).
    Train,
    /// The 10,000 test images (`t10k-*` files).
    Test,
}

/// Reads an IDX file of unsigned bytes, decompressing it first if it starts with the gzip
/// magic bytes (whatever its name).
///
/// The header is checked completely: the magic number `0 0 type ndims`, the type 0x08
/// (unsigned byte; other IDX types are refused by name), 1 to 4 dimensions, each at least 1,
/// whose product fits in memory; and the body must hold exactly that product of bytes. Each
/// problem, and a damaged gzip stream, is an [`Error::Format`] saying what was expected and
/// found. Only as many bytes as the header announces are kept in memory, however large a
/// damaged stream would decompress to.
pub fn idx(path: impl AsRef<Path>) -> Result<Idx, Error> {
    let path = path.as_ref();
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if raw.starts_with(&GZIP_MAGIC) {
        let limit = max_decompressed()?;
        parse_idx(path, MultiGzDecoder::new(&raw[..]), Some(limit))
    } else {
        parse_idx(path, &raw[..], None)
    }
}

/// Loads MNIST's training or test split from `dir`: the images as a flat float input of
/// `rows × columns` pixels scaled from 0..=255 to [0, 1] (dense layers take vectors), and the
/// digits as a [`Column::Labels`] target of 10 classes.
///
/// Each file is looked for under its original gzipped name (`train-images-idx3-ubyte.gz`)
/// and then without `.gz`, and either name may hold either form. The images must be
/// three-dimensional (`count × rows × columns`, 28 × 28 in MNIST, but any size is read), the
/// labels one-dimensional with the same count, and every label a digit 0 to 9. A missing file
/// is an error naming the file looked for and where to download MNIST.
pub fn mnist(dir: impl AsRef<Path>, split: Split) -> Result<Dataset<f32>, Error> {
    let dir = dir.as_ref();
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let images_path = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels_path = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = idx(&images_path)?;
    let labels = idx(&labels_path)?;
    let [count, rows, columns] = images.dims[..] else {
        return Err(Error::Format {
            file: images_path,
            format: "MNIST images",
            message: format!(
                "expected 3 dimensions (images, rows, columns), found {:?}; is this the \
                 images file of the split?",
                images.dims
            ),
        });
    };
    let [label_count] = labels.dims[..] else {
        return Err(Error::Format {
            file: labels_path,
            format: "MNIST labels",
            message: format!(
                "expected 1 dimension (one label per image), found {:?}; is this the labels \
                 file of the split?",
                labels.dims
            ),
        });
    };
    if label_count != count {
        return Err(Error::Data(format!(
            "`{}` holds {count} images but `{}` holds {label_count} labels; both files must \
             come from the same split, complete",
            images_path.display(),
            labels_path.display()
        )));
    }
    if let Some((i, &l)) = labels.data.iter().enumerate().find(|(_, &l)| l > 9) {
        return Err(Error::Format {
            file: labels_path,
            format: "MNIST labels",
            message: format!(
                "expected digits 0 to 9, found label {l} for item {i}; is this a labels file \
                 of another dataset?"
            ),
        });
    }
    let pixels = images.data.iter().map(|&p| f32::from(p) / 255.0).collect();
    let labels = labels.data.iter().map(|&l| u32::from(l)).collect();
    Dataset::supervised(pixels, &[rows * columns], Column::labels(labels, 10)?)
}

/// The path of `name.gz` or `name` in `dir`, whichever exists first; otherwise a not-found
/// error saying what was looked for and where to get MNIST.
fn find(dir: &Path, name: &str) -> Result<PathBuf, Error> {
    let gz = dir.join(format!("{name}.gz"));
    let plain = dir.join(name);
    for path in [&gz, &plain] {
        if path.exists() {
            return Ok(path.clone());
        }
    }
    let place = if dir.is_dir() {
        format!("in `{}`", dir.display())
    } else {
        format!("in `{}`, which is not a directory", dir.display())
    };
    let message =
        format!("looked for `{name}.gz` and `{name}` {place}, found neither; {MNIST_SOURCE}");
    Err(Error::io(
        gz,
        io::Error::new(io::ErrorKind::NotFound, message),
    ))
}

/// The most bytes the CSV and text loaders decompress from one gzip file, unless the
/// environment variable `NNC_MAX_DECOMPRESSED` says otherwise (a number of bytes, with an
/// optional `K`, `M` or `G` for powers of 1024). A gzip stream can expand a thousandfold, so a
/// small damaged or hostile file could otherwise fill memory; 1 GiB is ten times the largest
/// text or table the examples read. A gzipped IDX file is held to it too: its header may not
/// announce more, and trailing data is counted only up to it.
pub const DEFAULT_MAX_DECOMPRESSED: u64 = 1 << 30;

/// The decompression limit in force: `NNC_MAX_DECOMPRESSED`, else the default.
fn max_decompressed() -> Result<u64, Error> {
    match std::env::var("NNC_MAX_DECOMPRESSED") {
        Ok(text) => parse_size(&text).ok_or_else(|| {
            Error::Data(format!(
                "NNC_MAX_DECOMPRESSED is `{text}`, expected a number of bytes such as \
                 `2000000000` or `4G`"
            ))
        }),
        Err(_) => Ok(DEFAULT_MAX_DECOMPRESSED),
    }
}

/// `123`, `64K`, `512M` or `4G` (powers of 1024) as bytes.
fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last()? {
        (i, 'k' | 'K') => (&text[..i], 10),
        (i, 'm' | 'M') => (&text[..i], 20),
        (i, 'g' | 'G') => (&text[..i], 30),
        _ => (text, 0),
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// Reads `path` whole, decompressed when it starts with the gzip magic bytes, up to the
/// limit of [`DEFAULT_MAX_DECOMPRESSED`].
pub(super) fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>, Error> {
    read_maybe_gzip_within(path, None)
}

/// [`read_maybe_gzip`] with a given limit, or the one in force when `None`. The environment
/// is read only for a gzip file, so a bad `NNC_MAX_DECOMPRESSED` cannot break a plain one.
fn read_maybe_gzip_within(path: &Path, limit: Option<u64>) -> Result<Vec<u8>, Error> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(raw);
    }
    let limit = match limit {
        Some(limit) => limit,
        None => max_decompressed()?,
    };
    let mut out = Vec::new();
    // One byte past the limit tells a file that reaches it from one that exceeds it.
    let mut decoder = MultiGzDecoder::new(&raw[..]).take(limit.saturating_add(1));
    match decoder.read_to_end(&mut out) {
        Ok(_) if out.len() as u64 > limit => Err(Error::Format {
            file: path.to_path_buf(),
            format: "gzip",
            message: format!(
                "the {} of compressed data decompress to more than {}, the limit; if the \
                 file is what you meant to load, set NNC_MAX_DECOMPRESSED to a larger size \
                 (such as `8G`), or decompress it with `gunzip` first",
                bytes(raw.len()),
                bytes(limit as usize)
            ),
        }),
        Ok(_) => Ok(out),
        Err(e) => Err(corrupt_gzip(path, out.len(), &e)),
    }
}

/// The error for a gzip stream that fails to decompress after `produced` bytes.
pub(super) fn corrupt_gzip(path: &Path, produced: usize, e: &io::Error) -> Error {
    Error::Format {
        file: path.to_path_buf(),
        format: "gzip",
        message: format!(
            "the compressed data is damaged or cut short ({e}) after {} decompressed; \
             download the file again, and check it with `gzip -t`",
            bytes(produced)
        ),
    }
}

/// Names of the IDX type codes, for refusing the ones this loader does not read.
fn idx_type_name(code: u8) -> Option<&'static str> {
    match code {
        0x08 => Some("unsigned byte"),
        0x09 => Some("signed byte"),
        0x0B => Some("16-bit integer"),
        0x0C => Some("32-bit integer"),
        0x0D => Some("32-bit float"),
        0x0E => Some("64-bit float"),
        _ => None,
    }
}

/// Reads into `buf` until it is full or the input ends; returns how many bytes were read.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Parses an IDX stream from `r`, the decompressed contents of `file` when `gzipped`.
/// `limit` is the decompression limit for a gzipped file, `None` for a plain one.
fn parse_idx(file: &Path, mut r: impl Read, limit: Option<u64>) -> Result<Idx, Error> {
    let gzipped = limit.is_some();
    let bad = |message: String| Error::Format {
        file: file.to_path_buf(),
        format: "IDX",
        message,
    };
    // Reading from memory fails only inside the gzip decoder, so every read error means a
    // damaged stream; `produced` is how far it got.
    let read_error = |produced: usize, e: io::Error| corrupt_gzip(file, produced, &e);
    let what = if gzipped {
        "the decompressed data"
    } else {
        "the file"
    };

    let mut magic = [0u8; 4];
    let got = fill(&mut r, &mut magic).map_err(|e| read_error(0, e))?;
    if got < 4 {
        return Err(bad(format!(
            "expected a 4-byte magic number (0, 0, type, dimensions), found only {} in \
             {what}; the file is empty or cut short",
            bytes(got)
        )));
    }
    if magic[..2] != [0, 0] {
        // A failed download often leaves an HTML page or some other text in place of the file.
        let text = if magic.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            format!(
                " (the text {:?}, perhaps an error page saved by a failed download)",
                String::from_utf8_lossy(&magic)
            )
        } else {
            String::new()
        };
        return Err(bad(format!(
            "expected a magic number starting with two zero bytes, found {}{text}; this is \
             not an IDX file",
            hex(&magic)
        )));
    }
    let code = magic[2];
    if code != 0x08 {
        let name = match idx_type_name(code) {
            Some(name) => format!("the IDX type code for {name} values"),
            None => "not an IDX type code".to_string(),
        };
        return Err(bad(format!(
            "expected type code 0x08 (unsigned bytes, as in MNIST), found 0x{code:02X}, {name}; \
             this loader reads unsigned-byte IDX files only"
        )));
    }
    let ndims = usize::from(magic[3]);
    if !(1..=4).contains(&ndims) {
        return Err(bad(format!(
            "expected 1 to 4 dimensions in the magic number, found {ndims}"
        )));
    }
    let header_len = 4 + 4 * ndims;
    let mut raw_dims = [0u8; 16];
    let raw_dims = &mut raw_dims[..4 * ndims];
    let got = fill(&mut r, raw_dims).map_err(|e| read_error(4, e))?;
    if got < raw_dims.len() {
        return Err(bad(format!(
            "expected a {header_len}-byte header for {ndims} dimensions, found only {} in \
             {what}; the file is cut short",
            bytes(4 + got)
        )));
    }
    let mut dims = Vec::with_capacity(ndims);
    for (i, b) in raw_dims.chunks_exact(4).enumerate() {
        let d = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if d == 0 {
            return Err(bad(format!(
                "expected every dimension to be at least 1, found dimension {} of {ndims} \
                 to be 0; an IDX file without items holds nothing to load",
                i + 1
            )));
        }
        let d = usize::try_from(d).map_err(|_| {
            bad(format!(
                "dimension {} is {d}, more than this machine can address",
                i + 1
            ))
        })?;
        dims.push(d);
    }
    let len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            bad(format!(
                "the dimensions {dims:?} multiply to more bytes than this machine can \
                 address; the header is corrupt"
            ))
        })?;

    if let Some(limit) = limit.filter(|&l| len as u64 > l) {
        return Err(bad(format!(
            "the header announces {} of data, more than the decompression limit of {}; if \
             the file is what you meant to load, set NNC_MAX_DECOMPRESSED to a larger size \
             (such as `8G`)",
            bytes(len),
            bytes(limit as usize)
        )));
    }
    // Taking one byte more than announced tells a complete body from one with trailing bytes
    // without decompressing an arbitrarily long stream into memory; the buffer grows only as
    // data arrives, so a header announcing more than the file holds allocates nothing extra.
    let mut data = Vec::new();
    let wanted = u64::try_from(len).unwrap_or(u64::MAX).saturating_add(1);
    (&mut r)
        .take(wanted)
        .read_to_end(&mut data)
        .map_err(|e| read_error(header_len + data.len(), e))?;
    if data.len() < len {
        return Err(bad(format!(
            "expected {} of data after the {header_len}-byte header for dimensions {dims:?}, \
             found {} in {what}; the file is cut short, so download it again",
            bytes(len),
            data.len()
        )));
    }
    if data.len() > len {
        // Count the rest without keeping it, to say how much there is; a gzip stream is
        // counted only up to the limit, since a bomb would otherwise take unbounded time.
        let rest = io::copy(
            &mut (&mut r).take(limit.unwrap_or(u64::MAX)),
            &mut io::sink(),
        )
        .map_err(|e| read_error(header_len + data.len(), e))?;
        let extra = rest.saturating_add(1);
        return Err(bad(format!(
            "expected exactly {} of data after the {header_len}-byte header for dimensions \
             {dims:?}, found {} more after them in {what}; the header and the body disagree \
             (a wrong dimension, or files joined together)",
            bytes(len),
            bytes(usize::try_from(extra).unwrap_or(usize::MAX))
        )));
    }
    Ok(Idx { dims, data })
}

/// A byte count for messages: "1 byte", "12 bytes".
fn bytes(n: usize) -> String {
    if n == 1 {
        "1 byte".to_string()
    } else {
        format!("{n} bytes")
    }
}

/// Bytes as space-separated hexadecimal, for messages.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod limit_tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size(" 64K "), Some(64 << 10));
        assert_eq!(parse_size("512m"), Some(512 << 20));
        assert_eq!(parse_size("4G"), Some(4 << 30));
        for bad in ["", "G", "-1", "1.5G", "4T", "99999999999999999999G"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut gz = GzEncoder::new(Vec::new(), Compression::best());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn a_gzipped_idx_may_not_announce_more_than_the_limit() {
        // One dimension of 2^31 - 1 bytes, then a little data: 2 GiB announced, 1 GiB allowed.
        // The parser reads from memory; the path only names the file in messages.
        let file = gzip(&[0, 0, 8, 1, 0x7F, 0xFF, 0xFF, 0xFF, 1, 2, 3]);
        let path = Path::new("huge-idx1-ubyte.gz");
        let e = parse_idx(path, MultiGzDecoder::new(&file[..]), Some(1 << 30))
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than the decompression limit"), "{e}");
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        let dir = std::env::temp_dir().join(format!("nnc-bomb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bomb.csv.gz");
        std::fs::write(&path, gzip(&vec![b'0'; 1 << 20])).unwrap();

        let at_limit = read_maybe_gzip_within(&path, Some(1 << 20)).unwrap();
        assert_eq!(at_limit.len(), 1 << 20);
        let e = read_maybe_gzip_within(&path, Some(64 << 10))
            .unwrap_err()
            .to_string();
        assert!(e.contains("decompress to more than 65536 bytes"), "{e}");
        assert!(e.contains("NNC_MAX_DECOMPRESSED"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
