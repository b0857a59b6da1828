//! Issue 8 item 8: README's test command works on a fresh machine. `scripts/test` installs
//! the Debian packages of `scripts/test-packages` that are missing, then runs `cargo test
//! --workspace` with its arguments; `.ci/run` runs exactly it. These tests run the script
//! with a stand-in `cargo` that prints its arguments, so they never recurse into the suite
//! and never install anything.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A copy of the script beside `packages` as its package list, and a directory with a
/// stand-in `cargo`.
fn sandbox(packages: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let scripts = dir.path().join("repo/scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::copy(Path::new(ROOT).join("scripts/test"), scripts.join("test")).unwrap();
    std::fs::write(scripts.join("test-packages"), packages).unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::write(
        bin.join("cargo"),
        "#!/bin/sh\necho \"stand-in cargo: $*\"\n",
    )
    .unwrap();
    std::fs::set_permissions(bin.join("cargo"), std::fs::Permissions::from_mode(0o755)).unwrap();
    // Readable by an unprivileged user too (the not-root case).
    for path in [dir.path(), &dir.path().join("repo"), &scripts] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (dir, scripts.join("test"), bin)
}

fn run(script: &Path, bin: &Path, args: &[&str], wrap: &[&str]) -> Output {
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mut command = match wrap.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(script);
            c
        }
        None => Command::new(script),
    };
    command
        .args(args)
        .env("PATH", path)
        .env_remove("NODEDOC_TEST_NO_APT")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn readme_opens_with_the_command_ci_runs() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let first_block: Vec<&str> = readme
        .split("```")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .collect();
    assert!(
        first_block[0].starts_with("cargo run --release -- check "),
        "{first_block:?}"
    );
    assert!(
        first_block[1].starts_with("scripts/test "),
        "{first_block:?}"
    );
    let ci = std::fs::read_to_string(Path::new(ROOT).join(".ci/run")).unwrap();
    let last = ci.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
    assert_eq!(last, "exec scripts/test");
    let mode = std::fs::metadata(Path::new(ROOT).join("scripts/test"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "scripts/test is not executable");
}

/// Every package is installed here (scripts/test ran before this suite, or CI's did): the
/// script touches no apt and hands every argument to `cargo test --workspace`. Run as an
/// unprivileged user, so that on a machine missing a package the test fails instead of
/// installing it.
#[test]
fn with_every_package_installed_it_skips_apt_and_passes_arguments_on() {
    let list = std::fs::read_to_string(Path::new(ROOT).join("scripts/test-packages")).unwrap();
    let (_dir, script, bin) = sandbox(&list);
    let out = run(
        &script,
        &bin,
        &["-p", "nodedoc-kmsg", "--", "--nocapture"],
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "stand-in cargo: test --workspace -p nodedoc-kmsg -- --nocapture\n"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("packages of scripts/test-packages are installed"),
        "{stderr}"
    );
    assert!(!stderr.contains("installing"), "{stderr}");
    assert!(!stderr.contains("apt-get"), "{stderr}");
    assert!(stderr.contains("warning: not root"), "{stderr}");
}

/// A missing package and no root: a clear error that names it and says how to install it;
/// the tests are not run.
#[test]
fn a_missing_package_without_root_is_a_clear_error() {
    let (_dir, script, bin) = sandbox("# comment\nprocps   # here\nnodedoc-no-such-package\n");
    let out = run(
        &script,
        &bin,
        &[],
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("installing these missing packages needs root: nodedoc-no-such-package"),
        "{stderr}"
    );
    assert!(stderr.contains("apt-get install -y --no-install-recommends nodedoc-no-such-package"));
}

/// Without dpkg and apt (not Debian), it says so; NODEDOC_TEST_NO_APT=1 runs the tests anyway.
#[test]
fn without_apt_it_says_so_unless_told_to_skip() {
    let (dir, script, bin) = sandbox("procps\n");
    // A PATH with bash, dirname and the stand-in cargo, and no dpkg-query or apt-get.
    let minimal = dir.path().join("minimal");
    std::fs::create_dir(&minimal).unwrap();
    for tool in ["bash", "dirname"] {
        std::os::unix::fs::symlink(Path::new("/usr/bin").join(tool), minimal.join(tool)).unwrap();
    }
    std::os::unix::fs::symlink(bin.join("cargo"), minimal.join("cargo")).unwrap();
    let out = Command::new("/usr/bin/bash")
        .arg(&script)
        .env("PATH", &minimal)
        .env_remove("NODEDOC_TEST_NO_APT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no dpkg-query/apt-get here"),
        "{}",
        text(&out.stderr)
    );
    let skipped = Command::new("/usr/bin/bash")
        .arg(&script)
        .arg("x")
        .env("PATH", &minimal)
        .env("NODEDOC_TEST_NO_APT", "1")
        .output()
        .unwrap();
    assert_eq!(skipped.status.code(), Some(0), "{}", text(&skipped.stderr));
    assert_eq!(
        text(&skipped.stdout),
        "stand-in cargo: test --workspace x\n"
    );
}
