//! Turning `gatehouse run -- COMMAND...` into the child process to start. Streamlit is recognised
//! (`streamlit run ...` and `python -m streamlit run ...`) and given the flags that put it on the private port
//! and keep it headless; flags the user gave for those settings, or for `server.trustedUserHeaders`, are
//! dropped with a warning, since they would break the wiring. Every command also gets `$PORT`, and every
//! command gets the Streamlit settings in its environment too (a wrapped Streamlit reads them there).
//!
//! The header -> `st.user` mapping (`server.trustedUserHeaders`) names the run's secret headers
//! (`PrivateIdentityNames`), so it travels only in the environment, which other users cannot read, never on
//! the command line, which they can (`/proc/PID/cmdline`); Streamlit reads `STREAMLIT_*` variables as if they
//! were flags. The assertion is deliberately absent from it: it changes every few minutes, and Streamlit
//! only resumes a session on reconnect when `st.user` is unchanged; apps read it from `st.context.headers`.

const MANAGED_FLAGS: [&str; 4] =
    ["--server.port", "--server.address", "--server.headless", "--server.trustedUserHeaders"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildCommand {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Path polled until the app answers.
    pub health_path: String,
    pub is_streamlit: bool,
    /// Flags the user gave that Gatehouse replaced, for a warning.
    pub dropped_flags: Vec<String>,
}

/// `streamlit_mapping` is the `server.trustedUserHeaders` JSON for this run.
pub fn child_command(
    command: &[String],
    port: u16,
    extra_env: Vec<(String, String)>,
    streamlit_mapping: &str,
) -> Option<ChildCommand> {
    let (program, rest) = command.split_first()?;
    // Streamlit also reads its settings from the environment, and that reaches it through any wrapper
    // (`uv run`, `poetry run`, `sh -c`, ...): without these a wrapped Streamlit would listen publicly on
    // 8501, beside Gatehouse instead of behind it. Flags, where we can add them, take precedence anyway.
    let mut env = vec![
        ("PORT".to_owned(), port.to_string()),
        ("STREAMLIT_SERVER_PORT".to_owned(), port.to_string()),
        ("STREAMLIT_SERVER_ADDRESS".to_owned(), "127.0.0.1".to_owned()),
        ("STREAMLIT_SERVER_HEADLESS".to_owned(), "true".to_owned()),
        ("STREAMLIT_SERVER_TRUSTED_USER_HEADERS".to_owned(), streamlit_mapping.to_owned()),
    ];
    env.extend(extra_env);
    let mentions_streamlit =
        command.iter().any(|arg| arg.rsplit('/').next() == Some("streamlit") || arg.contains("streamlit run"));
    let Some(run_index) = streamlit_run_index(command) else {
        return Some(ChildCommand {
            program: program.clone(),
            args: rest.to_vec(),
            env,
            health_path: if mentions_streamlit { "/_stcore/health" } else { "/" }.to_owned(),
            is_streamlit: false,
            dropped_flags: Vec::new(),
        });
    };
    // Everything up to and including `run` stays first; our flags follow; then the user's, minus managed ones.
    let mut args: Vec<String> = command[1..=run_index].to_vec();
    args.extend([
        "--server.port".to_owned(),
        port.to_string(),
        "--server.address".to_owned(),
        "127.0.0.1".to_owned(),
        "--server.headless".to_owned(),
        "true".to_owned(),
    ]);
    let mut dropped = Vec::new();
    let mut user_args = command[run_index + 1..].iter();
    while let Some(arg) = user_args.next() {
        if arg == "--" {
            // Arguments for the script itself: passed on untouched.
            args.push(arg.clone());
            args.extend(user_args.by_ref().cloned());
            break;
        }
        if let Some(flag) = MANAGED_FLAGS.iter().find(|flag| arg == *flag || arg.starts_with(&format!("{flag}="))) {
            dropped.push((*flag).to_owned());
            if arg == flag {
                user_args.next();
            }
            continue;
        }
        args.push(arg.clone());
    }
    Some(ChildCommand {
        program: program.clone(),
        args,
        env,
        health_path: "/_stcore/health".to_owned(),
        is_streamlit: true,
        dropped_flags: dropped,
    })
}

/// Index of `run` in `streamlit run ...` or `python -m streamlit run ...`.
fn streamlit_run_index(command: &[String]) -> Option<usize> {
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_owned();
    if base(&command[0]) == "streamlit" && command.get(1).is_some_and(|a| a == "run") {
        return Some(1);
    }
    let is_python = base(&command[0]).starts_with("python");
    if is_python
        && command.get(1).is_some_and(|a| a == "-m")
        && command.get(2).is_some_and(|a| a == "streamlit")
        && command.get(3).is_some_and(|a| a == "run")
    {
        return Some(3);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    const MAPPING: &str = r#"{"x-gatehouse-0123-user": "username"}"#;

    fn child_command(command: &[String], port: u16, extra_env: Vec<(String, String)>) -> Option<ChildCommand> {
        super::child_command(command, port, extra_env, MAPPING)
    }

    #[test]
    fn streamlit_gets_port_address_headless_and_headers() {
        let child = child_command(&strings(&["streamlit", "run", "app.py"]), 40123, vec![]).unwrap();
        assert!(child.is_streamlit);
        assert_eq!(child.program, "streamlit");
        assert_eq!(&child.args[..3], &strings(&["run", "--server.port", "40123"])[..]);
        assert!(child.args.windows(2).any(|w| w == ["--server.address", "127.0.0.1"]));
        assert!(child.args.windows(2).any(|w| w == ["--server.headless", "true"]));
        // The mapping names the run's secret headers: environment only, never the command line.
        assert!(!child.args.iter().any(|arg| arg.contains("trustedUserHeaders") || arg.contains("x-gatehouse")));
        assert!(child.env.contains(&("STREAMLIT_SERVER_TRUSTED_USER_HEADERS".to_owned(), MAPPING.to_owned())));
        assert_eq!(child.args.last().unwrap(), "app.py");
        assert!(child.env.contains(&("PORT".to_owned(), "40123".to_owned())));
        assert_eq!(child.health_path, "/_stcore/health");
    }

    #[test]
    fn conflicting_user_flags_are_dropped_but_script_args_kept() {
        let command = strings(&[
            "python3",
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            "9999",
            "--server.address=0.0.0.0",
            "--server.trustedUserHeaders={}",
            "--theme.base",
            "dark",
            "--",
            "--server.port",
            "1",
        ]);
        let child = child_command(&command, 40000, vec![]).unwrap();
        assert!(child.is_streamlit);
        assert_eq!(child.dropped_flags, strings(&["--server.port", "--server.address", "--server.trustedUserHeaders"]));
        assert!(!child.args.contains(&"9999".to_owned()));
        assert!(child.args.windows(2).any(|w| w == ["--theme.base", "dark"]));
        let separator = child.args.iter().position(|a| a == "--").unwrap();
        assert_eq!(&child.args[separator + 1..], &strings(&["--server.port", "1"])[..]);
    }

    #[test]
    fn other_commands_only_get_port() {
        let child = child_command(&strings(&["python3", "-m", "http.server"]), 40001, vec![]).unwrap();
        assert!(!child.is_streamlit);
        assert_eq!(child.args, strings(&["-m", "http.server"]));
        assert_eq!(child.health_path, "/");
        assert!(child_command(&[], 1, vec![]).is_none());
    }

    #[test]
    fn wrapped_streamlit_is_configured_through_the_environment() {
        let child = child_command(&strings(&["uv", "run", "streamlit", "run", "app.py"]), 40002, vec![]).unwrap();
        assert_eq!(child.args, strings(&["run", "streamlit", "run", "app.py"]));
        assert_eq!(child.health_path, "/_stcore/health");
        for (name, value) in [
            ("STREAMLIT_SERVER_PORT", "40002"),
            ("STREAMLIT_SERVER_ADDRESS", "127.0.0.1"),
            ("STREAMLIT_SERVER_HEADLESS", "true"),
            ("STREAMLIT_SERVER_TRUSTED_USER_HEADERS", MAPPING),
        ] {
            assert!(child.env.contains(&(name.to_owned(), value.to_owned())), "{name} missing");
        }
    }
}
