//! QR codes of invoices: SVG for the web page, block characters for the terminal.

use qrcode::render::{svg, unicode};
use qrcode::{EcLevel, QrCode};

/// Longest text made into a QR code.
const MAX_LEN: usize = 2000;

fn code(text: &str) -> Result<QrCode, String> {
    if text.is_empty() || text.len() > MAX_LEN {
        return Err(format!("QR data must be 1 to {MAX_LEN} bytes"));
    }
    // Invoices are case-insensitive: upper case fits the QR alphanumeric mode (smaller code).
    let data = if text.starts_with("ln") {
        text.to_ascii_uppercase()
    } else {
        text.to_string()
    };
    QrCode::with_error_correction_level(data.as_bytes(), EcLevel::L).map_err(|e| e.to_string())
}

/// An SVG image of `text` as a QR code.
pub fn svg(text: &str) -> Result<String, String> {
    Ok(code(text)?
        .render::<svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}

/// `text` as a QR code in block characters, for a terminal.
pub fn terminal(text: &str) -> Result<String, String> {
    Ok(code(text)?
        .render::<unicode::Dense1x2>()
        .dark_color(unicode::Dense1x2::Light)
        .light_color(unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoices_render_in_both_forms() {
        let s = svg("lnbc10n1pjunk").unwrap();
        assert!(s.starts_with("<?xml") && s.contains("<svg"));
        let t = terminal("lnbc10n1pjunk").unwrap();
        assert!(t.lines().count() > 10);
        assert!(svg("").is_err());
        assert!(svg(&"x".repeat(5000)).is_err());
    }
}
