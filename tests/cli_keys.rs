//! `portico keys`: records written through wrangler hold only the key's
//! hash, and revoke/rotate change them as documented. A file-backed fake
//! wrangler stands in for KV.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use portico::auth::api_key::{self, KeyRecord};
use serde_json::Value;

struct Kv {
    dir: PathBuf,
}

impl Kv {
    fn new(name: &str) -> Kv {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Kv { dir }
    }

    fn portico(&self, args: &[&str]) -> Output {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let fake = root.join("tests/support/fake-wrangler.mjs");
        Command::new(env!("CARGO_BIN_EXE_portico"))
            .args(args)
            .current_dir(root)
            .env("PORTICO_WRANGLER", format!("node {}", fake.display()))
            .env("FAKE_KV_DIR", &self.dir)
            .output()
            .expect("portico runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.portico(args);
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{args:?}: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        text
    }

    fn record(&self, id: &str) -> KeyRecord {
        let path = self.dir.join("KEYS").join(format!("key%3A{id}"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }
}

fn created(kv: &Kv, extra: &[&str]) -> (String, String) {
    let mut args = vec!["keys", "create", "--local", "--json"];
    args.extend_from_slice(extra);
    let printed: Value = serde_json::from_str(&kv.ok(&args)).unwrap();
    (
        printed["id"].as_str().unwrap().to_owned(),
        printed["key"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn create_stores_only_the_hash_and_prints_the_key_once() {
    let kv = Kv::new("keys-create");
    let (id, key) = created(
        &kv,
        &[
            "--name",
            "acme",
            "--roles",
            "orders,billing",
            "--rate",
            "5/60s",
            "--expires",
            "2027-01-01",
        ],
    );
    assert_eq!(api_key::key_id(&key), Some(id.as_str()));
    let record = kv.record(&id);
    assert!(record.matches(&key));
    assert_eq!(record.name, "acme");
    assert_eq!(record.roles, ["orders", "billing"]);
    assert_eq!(
        record.rate.map(|r| (r.limit, r.period_seconds)),
        Some((5, 60))
    );
    assert_eq!(record.expires_at, Some(1_798_761_600));
    let stored = std::fs::read_to_string(kv.dir.join("KEYS").join(format!("key%3A{id}"))).unwrap();
    assert!(!stored.contains(&key), "the plaintext key is never stored");
    let calls = std::fs::read_to_string(kv.dir.join("calls.log")).unwrap();
    assert!(!calls.contains(&key), "nor passed on a command line");
}

#[test]
fn list_shows_consumers_and_states() {
    let kv = Kv::new("keys-list");
    let (first, _) = created(&kv, &["--name", "acme"]);
    created(&kv, &["--name", "beta", "--roles", "x"]);
    kv.ok(&["keys", "revoke", &first, "--local"]);
    let rows: Value = serde_json::from_str(&kv.ok(&["keys", "list", "--local", "--json"])).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let acme = rows.iter().find(|r| r["name"] == "acme").unwrap();
    assert_eq!(acme["disabled"], true);
    let table = kv.ok(&["keys", "list", "--local"]);
    assert!(
        table.contains("revoked") && table.contains("active"),
        "{table}"
    );
}

#[test]
fn revoke_disables_the_record() {
    let kv = Kv::new("keys-revoke");
    let (id, key) = created(&kv, &["--name", "acme"]);
    kv.ok(&["keys", "revoke", &id, "--local"]);
    let record = kv.record(&id);
    assert!(record.disabled && record.revoked_at.is_some());
    assert!(record.matches(&key), "the record stays for audit");
}

#[test]
fn rotate_makes_a_successor_and_a_grace_period() {
    let kv = Kv::new("keys-rotate");
    let (old_id, _) = created(
        &kv,
        &["--name", "acme", "--roles", "orders", "--rate", "10/1m"],
    );
    let printed: Value = serde_json::from_str(&kv.ok(&[
        "keys", "rotate", &old_id, "--grace", "2h", "--local", "--json",
    ]))
    .unwrap();
    let new_id = printed["id"].as_str().unwrap();
    let new_key = printed["key"].as_str().unwrap();
    let new = kv.record(new_id);
    assert!(new.matches(new_key));
    assert_eq!(new.roles, ["orders"]);
    assert_eq!(new.rate.map(|r| r.limit), Some(10));
    let old = kv.record(&old_id);
    assert_eq!(old.rotated_to.as_deref(), Some(new_id));
    let grace = old.expires_at.unwrap() - new.created_at;
    assert!((7199..=7201).contains(&grace), "grace {grace}");
}

#[test]
fn bad_input_is_refused_before_touching_kv() {
    let kv = Kv::new("keys-bad");
    for args in [
        vec!["keys", "create", "--name", "x", "--rate", "5/1w", "--local"],
        vec![
            "keys",
            "create",
            "--name",
            "x",
            "--expires",
            "soon",
            "--local",
        ],
        vec!["keys", "show", "../etc", "--local"],
    ] {
        let output = kv.portico(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
    }
    assert!(!kv.dir.join("calls.log").exists());
    let missing = kv.portico(&["keys", "revoke", "000000000000", "--local"]);
    assert_eq!(missing.status.code(), Some(2));
}
