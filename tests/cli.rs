//! The `portico` binary: config validation, pushes through wrangler, and
//! route explanations. A fake wrangler records what it is asked to do.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn portico(args: &[&str], wrangler: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portico"));
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    match wrangler {
        Some(line) => command.env("PORTICO_WRANGLER", line),
        None => command.env("PORTICO_WRANGLER", "false"),
    };
    command.output().expect("portico runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A fake wrangler that appends its arguments, and the content of any
/// `--path` file, to `log`.
fn fake_wrangler(dir: &Path) -> (String, PathBuf) {
    let log = dir.join("calls.log");
    let script = dir.join("fake-wrangler.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" >> '{log}'\nwhile [ $# -gt 0 ]; do if [ \"$1\" = --path ]; then cat \"$2\" >> '{log}'; fi; shift; done\n",
            log = log.display()
        ),
    )
    .unwrap();
    (format!("sh {}", script.display()), log)
}

/// A wrangler stand-in running `body` as a shell script.
fn script_wrangler(dir: &Path, body: &str) -> String {
    let script = dir.join("wrangler.sh");
    std::fs::write(&script, format!("#!/bin/sh\n{body}\n")).unwrap();
    format!("sh {}", script.display())
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn validate_accepts_the_demo_config() {
    let output = portico(&["config", "validate", "fixtures/config/basic.json"], None);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("valid (3 routes, 2 services)"));
}

#[test]
fn validate_warns_when_a_secret_the_config_names_is_a_plain_var() {
    let dir = scratch("secret-in-vars");
    let wrangler = dir.join("wrangler.toml");
    std::fs::write(
        &wrangler,
        "name = \"x\"\n[vars]\nPORTICO_IDENTITY_SECRET = \"oops\"\n\
         [env.staging.vars]\nPORTICO_ADMIN_TOKEN = \"oops\"\nUNRELATED = \"1\"\n",
    )
    .unwrap();
    let output = portico(
        &[
            "config",
            "validate",
            "fixtures/config/demo.json",
            "--wrangler-config",
            wrangler.to_str().unwrap(),
        ],
        None,
    );
    let said = text(&output);
    assert!(output.status.success(), "{said}");
    assert!(
        said.contains(
            "warning: auth.signing_secret: 'PORTICO_IDENTITY_SECRET' is a plain variable"
        ) && said.contains("([vars])")
            && said.contains("wrangler secret put PORTICO_IDENTITY_SECRET"),
        "{said}"
    );
    assert!(
        said.contains("warning: admin.token_secret: 'PORTICO_ADMIN_TOKEN'")
            && said.contains("([env.staging.vars])"),
        "{said}"
    );
    assert!(!said.contains("UNRELATED"), "{said}");

    // The project's own wrangler.toml defines no secrets as vars.
    let output = portico(&["config", "validate", "fixtures/config/demo.json"], None);
    assert!(!text(&output).contains("warning"), "{}", text(&output));
}

#[test]
fn validate_names_path_and_reason_and_exits_1() {
    let output = portico(
        &["config", "validate", "fixtures/config/invalid/tie.json"],
        None,
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("routes[1]: ties with route 'first' (routes[0])"),
        "{}",
        text(&output)
    );
}

#[test]
fn validate_of_a_missing_file_exits_2() {
    let output = portico(&["config", "validate", "no/such/file.json"], None);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn push_refuses_an_invalid_config_without_calling_wrangler() {
    let dir = scratch("push-invalid");
    let (wrangler, log) = fake_wrangler(&dir);
    let output = portico(
        &[
            "config",
            "push",
            "fixtures/config/invalid/bad-host.json",
            "--local",
        ],
        Some(&wrangler),
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).contains("nothing was pushed"));
    assert!(!log.exists(), "wrangler was called");
}

#[test]
fn push_writes_the_checked_document_through_wrangler() {
    let dir = scratch("push-valid");
    let (wrangler, log) = fake_wrangler(&dir);
    let output = portico(
        &[
            "config",
            "push",
            "fixtures/config/basic.json",
            "--local",
            "--persist-to",
            "state/dir",
        ],
        Some(&wrangler),
    );
    assert!(output.status.success(), "{}", text(&output));
    let calls = std::fs::read_to_string(log).unwrap();
    let first_line = calls.lines().next().unwrap();
    assert!(
        first_line.starts_with("kv key put config --binding CONFIG --path "),
        "{first_line}"
    );
    assert!(
        first_line.ends_with("--local --persist-to state/dir --config wrangler.toml"),
        "{first_line}"
    );
    let demo = std::fs::read_to_string("fixtures/config/basic.json")
        .or_else(|_| {
            std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/config/basic.json"),
            )
        })
        .unwrap();
    assert!(
        calls.ends_with(&demo),
        "the exact checked bytes were pushed"
    );
}

#[test]
fn push_needs_local_or_remote() {
    let output = portico(&["config", "push", "fixtures/config/basic.json"], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("--local"));
}

#[test]
fn a_failing_wrangler_is_reported() {
    let dir = scratch("push-failing");
    let wrangler = script_wrangler(&dir, "echo 'You are not authenticated' >&2; exit 1");
    let output = portico(
        &["config", "push", "fixtures/config/basic.json", "--remote"],
        Some(&wrangler),
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("You are not authenticated"),
        "{}",
        text(&output)
    );
}

#[test]
fn explain_shows_route_params_and_upstream() {
    let output = portico(
        &[
            "routes",
            "explain",
            "GET",
            "http://127.0.0.1:8787/api/users/42/profile?x=1",
            "--config",
            "fixtures/config/basic.json",
        ],
        None,
    );
    assert!(output.status.success(), "{}", text(&output));
    let report = text(&output);
    assert!(
        report.contains("route     user-profile (routes[1])"),
        "{report}"
    );
    assert!(report.contains("params    id=42"), "{report}");
    assert!(
        report.contains("upstream  GET http://127.0.0.1:9101/profiles/42?x=1"),
        "{report}"
    );
    assert!(report.contains("timeout   5000 ms"), "{report}");
}

#[test]
fn explain_lists_a_balanced_services_targets() {
    let output = portico(
        &[
            "routes",
            "explain",
            "GET",
            "http://gw.example/api/orders/7",
            "--config",
            "fixtures/config/balanced.json",
        ],
        None,
    );
    assert!(output.status.success(), "{}", text(&output));
    let report = text(&output);
    assert!(
        report.contains("service   orders (http://10.0.1.10:8080 (weight 2), http://10.0.1.11:8080 (weight 2), http://10.0.1.12:8080 (weight 1))"),
        "{report}"
    );
    assert!(
        report.contains("upstream  GET http://10.0.1.10:8080/orders/7 (the first of 3 targets"),
        "{report}"
    );
}

#[test]
fn explain_reports_404_and_405_and_exits_1() {
    let output = portico(
        &[
            "routes",
            "explain",
            "PATCH",
            "/api/orders/1",
            "--config",
            "fixtures/config/basic.json",
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).contains("405 method-not-allowed (Allow: GET, HEAD, POST)"));

    let output = portico(
        &[
            "routes",
            "explain",
            "GET",
            "/nope",
            "--config",
            "fixtures/config/basic.json",
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).contains("404 route-not-found"));
}

#[test]
fn explain_reads_kv_through_wrangler_when_no_file_is_given() {
    let dir = scratch("explain-kv");
    let config = dir.join("config.json");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/config/basic.json"),
        &config,
    )
    .unwrap();
    let wrangler = script_wrangler(&dir, &format!("cat '{}'", config.display()));
    let output = portico(
        &["routes", "explain", "GET", "/api/orders/9"],
        Some(&wrangler),
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("route     orders (routes[2])"));

    let wrangler = script_wrangler(&dir, "echo 'Value not found'");
    let missing = portico(
        &["routes", "explain", "GET", "/api/orders/9"],
        Some(&wrangler),
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing).contains("no configuration in CONFIG (local)"));
}
