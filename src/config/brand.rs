//! `[server] app_name` and the `[theme]` section: what Gatehouse's pages and mail call the app they protect,
//! and its logo and primary colour, so the sign-in page looks like this app's and not a generic one. `gatehouse
//! run` fills in what is not set from the app itself (`supervisor::app_brand`).

use std::path::Path;

use super::ConfigReader;

/// Logos larger than this are refused: they are sent with every sign-in page.
pub const MAX_LOGO_BYTES: usize = 256 * 1024;
const MAX_APP_NAME: usize = 80;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrandConfig {
    /// Shown as "Sign in to continue to NAME", in page titles and in mail.
    pub app_name: Option<String>,
    pub logo: Option<Logo>,
    pub primary_color: Option<Colour>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logo {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
}

/// A colour as `#rrggbb` (also read from `#rgb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour(pub [u8; 3]);

impl Colour {
    /// `#rgb` or `#rrggbb`; anything else is `None` (CSS colour names and functions are not taken, so nothing
    /// but a colour can reach the stylesheet).
    pub fn parse(raw: &str) -> Option<Self> {
        let hex = raw.trim().strip_prefix('#')?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let digit = |i: usize| u8::from_str_radix(&hex[i..=i], 16).ok();
        match hex.len() {
            3 => Some(Self([digit(0)? * 17, digit(1)? * 17, digit(2)? * 17])),
            6 => {
                let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
                Some(Self([byte(0)?, byte(2)?, byte(4)?]))
            }
            _ => None,
        }
    }

    pub fn hex(self) -> String {
        let [r, g, b] = self.0;
        format!("#{r:02x}{g:02x}{b:02x}")
    }

    /// The same colour darkened, for pressed buttons.
    pub fn darker(self) -> Self {
        Self(self.0.map(|c| (u16::from(c) * 7 / 8) as u8))
    }

    /// White text when it keeps WCAG's 3:1 for large and bold text (Streamlit's red, #ff4b4b, has 3.3:1),
    /// black on lighter colours.
    pub fn text_on(self) -> &'static str {
        if self.contrast_with_white() >= 3.0 { "#ffffff" } else { "#000000" }
    }

    /// The WCAG contrast ratio of this colour against white (1 to 21).
    pub fn contrast_with_white(self) -> f64 {
        let linear = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.03928 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
        };
        let [r, g, b] = self.0;
        let luminance = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
        1.05 / (luminance + 0.05)
    }

    /// The stylesheet that gives Gatehouse's pages this primary colour. Links keep the text colour when the
    /// primary colour would be too faint on white to read (WCAG's 3:1 for large text and UI).
    pub fn theme_css(self) -> String {
        let [r, g, b] = self.0;
        let link = if self.contrast_with_white() >= 3.0 { self.hex() } else { "var(--text)".to_owned() };
        format!(
            ":root {{ --primary: {primary}; --primary-dark: {dark}; --on-primary: {on}; --link: {link}; --focus: rgba({r}, {g}, {b}, 0.5); }}\n",
            primary = self.hex(),
            dark = self.darker().hex(),
            on = self.text_on(),
        )
    }
}

pub fn read_brand(r: &mut ConfigReader) -> BrandConfig {
    let app_name = r.value::<String>("server.app_name").and_then(|name| match check_app_name(&name) {
        Ok(name) => Some(name),
        Err(message) => {
            r.problem("server.app_name", message);
            None
        }
    });
    let logo = r.value::<String>("theme.logo").and_then(|path| match read_logo(Path::new(&path)) {
        Ok(logo) => Some(logo),
        Err(message) => {
            r.problem("theme.logo", message);
            None
        }
    });
    let primary_color = r.value::<String>("theme.primary_color").and_then(|raw| match Colour::parse(&raw) {
        Some(colour) => Some(colour),
        None => {
            r.problem("theme.primary_color", format!("'{raw}' is not a colour; write it like \"#ff4b4b\""));
            None
        }
    });
    BrandConfig { app_name, logo, primary_color }
}

pub fn check_app_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("is empty; leave it out to use the app's own title".into());
    }
    if name.chars().count() > MAX_APP_NAME {
        return Err(format!("is longer than {MAX_APP_NAME} characters"));
    }
    // Control characters could break a mail header; bidirectional overrides could make a subject or title
    // read as something else.
    let bidi = |c: char| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}');
    if name.chars().any(|c| c.is_control() || bidi(c)) {
        return Err("contains control or text-direction characters".into());
    }
    Ok(name.to_owned())
}

/// Reads a logo: SVG, PNG, JPEG, WebP or GIF (by content, not by name), at most [`MAX_LOGO_BYTES`].
pub fn read_logo(path: &Path) -> Result<Logo, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|err| format!("cannot read '{}': {err}", path.display()))?;
    // Read at most one byte past the limit: a huge file (or /dev/zero) never fills memory.
    let mut bytes = Vec::new();
    file.take(MAX_LOGO_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| format!("cannot read '{}': {err}", path.display()))?;
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(format!("'{}' is larger than {} KiB", path.display(), MAX_LOGO_BYTES / 1024));
    }
    let content_type = image_type(&bytes)
        .ok_or_else(|| format!("'{}' is not an SVG, PNG, JPEG, WebP or GIF image", path.display()))?;
    Ok(Logo { bytes, content_type })
}

fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        // SVG is text: an <svg element near the start (after an XML declaration or comments).
        let start = std::str::from_utf8(&bytes[..bytes.len().min(1024)]).ok()?;
        start.contains("<svg").then_some("image/svg+xml")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_hex_only() {
        assert_eq!(Colour::parse("#FF4B4B"), Some(Colour([255, 75, 75])));
        assert_eq!(Colour::parse(" #0a0 "), Some(Colour([0, 170, 0])));
        assert_eq!(Colour::parse("#0a0").unwrap().hex(), "#00aa00");
        for bad in ["red", "ff4b4b", "#ff4b4", "#ff4b4bff", "#gggggg", "#fff;}body{", "rgb(1,2,3)", "#", "#ÿÿÿ"] {
            assert_eq!(Colour::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn button_text_reads_on_its_colour() {
        assert_eq!(Colour([255, 75, 75]).text_on(), "#ffffff", "Streamlit red takes white text");
        assert_eq!(Colour([255, 220, 0]).text_on(), "#000000", "yellow takes black text");
        assert_eq!(Colour([0, 0, 128]).text_on(), "#ffffff");
        assert_eq!(Colour([200, 200, 200]).darker(), Colour([175, 175, 175]));
    }

    #[test]
    fn the_theme_stylesheet_sets_the_colours_and_keeps_faint_links_readable() {
        let css = Colour([0x1e, 0x88, 0xe5]).theme_css();
        assert!(css.contains("--primary: #1e88e5;") && css.contains("--link: #1e88e5;"), "{css}");
        assert!(css.contains("--on-primary: #ffffff;") && css.contains("--focus: rgba(30, 136, 229, 0.5)"), "{css}");
        let faint = Colour([255, 235, 59]).theme_css();
        assert!(faint.contains("--link: var(--text);") && faint.contains("--on-primary: #000000;"), "{faint}");
    }

    #[test]
    fn logos_are_recognised_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let svg = write("logo.svg", b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>");
        assert_eq!(read_logo(&svg).unwrap().content_type, "image/svg+xml");
        let png = write("logo.png", b"\x89PNG\r\n\x1a\n....");
        assert_eq!(read_logo(&png).unwrap().content_type, "image/png");
        let text = write("logo.png.txt", b"hello");
        assert!(read_logo(&text).unwrap_err().contains("is not an SVG"));
        let big = write("big.png", &[0x89; MAX_LOGO_BYTES + 1]);
        assert!(read_logo(&big).unwrap_err().contains("larger than 256 KiB"));
        assert!(read_logo(&dir.path().join("missing.png")).unwrap_err().contains("cannot read"));
        assert!(read_logo(Path::new("/dev/zero")).unwrap_err().contains("larger than 256 KiB"), "read no further");
    }

    #[test]
    fn app_names_are_trimmed_and_bounded() {
        assert_eq!(check_app_name("  Sales dashboard "), Ok("Sales dashboard".to_owned()));
        assert!(check_app_name("   ").is_err());
        assert!(check_app_name(&"x".repeat(81)).is_err());
        assert!(check_app_name("a\u{7}b").is_err());
        assert!(check_app_name("Invoices \u{202e}fdp.exe").is_err(), "no right-to-left override");
        assert!(check_app_name("Zoë's Ünïcode dashboard").is_ok());
    }
}
