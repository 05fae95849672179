//! What `gatehouse run` can tell about the app it starts, for the pages' name and colour when the
//! configuration does not say (`[server] app_name`, `[theme] primary_color`): the title the script gives
//! `st.set_page_config(page_title=...)` (or a name made from the script's file name), and `[theme]
//! primaryColor` of the app's `.streamlit/config.toml`. Only literal values are read; nothing is run.

use std::path::{Path, PathBuf};

use figment::providers::Format;

use crate::config::brand::{BrandConfig, Colour, check_app_name};

/// Fills in what `brand` leaves open from the app command (`streamlit run app.py ...`) run in `cwd`.
pub fn fill_in(brand: &mut BrandConfig, command: &[String], cwd: &Path) {
    let script = script_path(command).map(|script| cwd.join(script));
    if brand.app_name.is_none() {
        brand.app_name = script.as_deref().and_then(app_name_of);
    }
    if brand.primary_color.is_none() {
        let mut places = vec![cwd.join(".streamlit/config.toml")];
        if let Some(home) = std::env::var_os("HOME") {
            places.push(PathBuf::from(home).join(".streamlit/config.toml"));
        }
        brand.primary_color = places.iter().find_map(|path| streamlit_primary_colour(path));
    }
}

/// The `.py` file of `streamlit run FILE` (or `python -m streamlit run FILE`).
fn script_path(command: &[String]) -> Option<&str> {
    let run = command.iter().position(|arg| arg == "run")?;
    command[run + 1..].iter().map(String::as_str).find(|arg| arg.ends_with(".py") && !arg.starts_with('-'))
}

/// The page title the script sets, or a name made from its file name.
fn app_name_of(script: &Path) -> Option<String> {
    let title = std::fs::read_to_string(script).ok().and_then(|source| page_title(&source));
    title.or_else(|| name_from_path(script)).and_then(|name| check_app_name(&name).ok())
}

/// `page_title="..."` (or `'...'`) in the script's source: a plain literal without escapes only.
fn page_title(source: &str) -> Option<String> {
    let at = source.find("page_title")?;
    let rest = source[at + "page_title".len()..].trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let body = &rest[1..];
    let end = body.find(quote)?;
    let title = &body[..end];
    (!title.contains('\\') && !title.contains('\n') && !title.trim().is_empty()).then(|| title.trim().to_owned())
}

/// `sales_dashboard.py` -> "Sales dashboard"; a generic name (`app.py`, `main.py`, `streamlit_app.py`)
/// takes its folder's name instead.
fn name_from_path(script: &Path) -> Option<String> {
    let stem = script.file_stem()?.to_str()?;
    let generic = matches!(stem, "app" | "main" | "streamlit_app" | "index" | "Home" | "home");
    let word =
        if generic { script.canonicalize().ok()?.parent()?.file_name()?.to_str()?.to_owned() } else { stem.to_owned() };
    let spaced = word.replace(['_', '-'], " ");
    let spaced = spaced.trim();
    let mut chars = spaced.chars();
    let first = chars.next()?;
    Some(first.to_uppercase().chain(chars).collect())
}

/// `[theme] primaryColor` of a Streamlit config file, when it is a `#rgb`/`#rrggbb` colour.
fn streamlit_primary_colour(path: &Path) -> Option<Colour> {
    let text = std::fs::read_to_string(path).ok()?;
    let figment = figment::Figment::from(figment::providers::Toml::string(&text));
    let raw = figment.extract_inner::<String>("theme.primaryColor").ok()?;
    let colour = Colour::parse(&raw);
    if colour.is_none() {
        tracing::info!(path = %path.display(), "the app's primaryColor is not a #rrggbb colour; Gatehouse's pages keep their own");
    }
    colour
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_page_title_names_the_app() {
        assert_eq!(
            page_title("st.set_page_config(page_title=\"Sales dashboard\", layout=\"wide\")"),
            Some("Sales dashboard".into())
        );
        assert_eq!(page_title("st.set_page_config(\n    page_title = 'Ops',\n)"), Some("Ops".into()));
        assert_eq!(page_title("st.set_page_config(page_title=TITLE)"), None, "only literals");
        assert_eq!(page_title("st.set_page_config(page_title=\"a\\\"b\")"), None, "no escapes");
        assert_eq!(page_title("import streamlit"), None);
    }

    #[test]
    fn names_come_from_the_script_or_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("quarterly-report");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("app.py"), "import streamlit as st\nst.title('x')\n").unwrap();
        std::fs::write(folder.join("sales_dashboard.py"), "").unwrap();
        std::fs::write(folder.join("titled.py"), "st.set_page_config(page_title=\"Fleet status\")").unwrap();
        let name = |file: &str| app_name_of(&folder.join(file));
        assert_eq!(name("app.py"), Some("Quarterly report".into()));
        assert_eq!(name("sales_dashboard.py"), Some("Sales dashboard".into()));
        assert_eq!(name("titled.py"), Some("Fleet status".into()));
    }

    #[test]
    fn fills_in_only_what_the_configuration_leaves_open() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".streamlit")).unwrap();
        std::fs::write(dir.path().join(".streamlit/config.toml"), "[theme]\nprimaryColor = \"#1E88E5\"\n").unwrap();
        std::fs::write(dir.path().join("titled.py"), "st.set_page_config(page_title='Fleet status')").unwrap();
        let run = command(&["streamlit", "run", "titled.py", "--", "--flag"]);

        let mut brand = BrandConfig::default();
        fill_in(&mut brand, &run, dir.path());
        assert_eq!(brand.app_name.as_deref(), Some("Fleet status"));
        assert_eq!(brand.primary_color, Some(Colour([0x1e, 0x88, 0xe5])));

        let mut configured =
            BrandConfig { app_name: Some("Ops".into()), primary_color: Some(Colour([1, 2, 3])), logo: None };
        fill_in(&mut configured, &run, dir.path());
        assert_eq!(configured.app_name.as_deref(), Some("Ops"));
        assert_eq!(configured.primary_color, Some(Colour([1, 2, 3])));

        // Not a Streamlit command: nothing to read.
        let mut other = BrandConfig::default();
        fill_in(&mut other, &command(&["python3", "-m", "http.server"]), Path::new("/nonexistent"));
        assert_eq!(other.app_name, None);
    }
}
