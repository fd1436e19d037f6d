//! Reading model files. The CLI, `include_model!` and the build-script API all read `.nnc`
//! files through [`read`], so a file that is not UTF-8 gets the same message, with its
//! position, from each. (nnc-train's text loader words the same check for data files; the
//! two crates do not depend on each other, so each has its own.)

use std::io;
use std::path::Path;

/// Reads a model file as UTF-8. Invalid bytes are an [`io::ErrorKind::InvalidData`] error
/// giving their line, column and byte offset, and how to fix the file.
pub fn read(path: &Path) -> io::Result<String> {
    let bytes = std::fs::read(path)?;
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let offset = e.utf8_error().valid_up_to();
        let before = &bytes[..offset];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        // The prefix is valid UTF-8: that is what `valid_up_to` means.
        let column =
            std::str::from_utf8(&before[line_start..]).map_or(0, |s| s.chars().count()) + 1;
        let bad = e.utf8_error().error_len().unwrap_or(bytes.len() - offset);
        let shown: Vec<String> = bytes[offset..offset + bad]
            .iter()
            .map(|b| format!("0x{b:02X}"))
            .collect();
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "line {line}, column {column} (byte {offset}) holds {}, which is not UTF-8; \
                 nnc reads model files as UTF-8: save the file in that encoding (for \
                 example `iconv -f LATIN1 -t UTF-8` for a Latin-1 file)",
                shown.join(" ")
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn invalid_utf8_is_placed() {
        let dir = std::env::temp_dir().join(format!("nnc-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("latin1.nnc");
        std::fs::write(&path, b"model M {\n    // caf\xE9\n}\n").unwrap();
        let e = super::read(&path).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        let text = e.to_string();
        assert!(
            text.starts_with("line 2, column 11 (byte 20) holds 0xE9"),
            "{text}"
        );
        std::fs::write(&path, "model M {}\n").unwrap();
        assert_eq!(super::read(&path).unwrap(), "model M {}\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
