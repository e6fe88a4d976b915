//! Gives the binary its git revision and target for `--version`. `DRAINPIPE_GIT_REV` set at
//! build time wins (container builds leave `.git` out of the context); without it and without
//! git, the revision is `unknown`.
#![allow(clippy::print_stdout)]

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=DRAINPIPE_GIT_REV");
    let rev = std::env::var("DRAINPIPE_GIT_REV").ok().filter(|r| !r.trim().is_empty()).or_else(git_rev);
    println!("cargo:rustc-env=DRAINPIPE_GIT_REV={}", rev.as_deref().unwrap_or("unknown").trim());
    println!("cargo:rustc-env=DRAINPIPE_TARGET={}", std::env::var("TARGET").unwrap_or_default());
}

/// HEAD's revision, and the files whose change moves it (so a commit rebuilds the version).
fn git_rev() -> Option<String> {
    let git = |args: &[&str]| {
        let out = Command::new("git").args(args).output().ok().filter(|o| o.status.success())?;
        String::from_utf8(out.stdout).ok().map(|s| s.trim().to_owned())
    };
    let rev = git(&["rev-parse", "--short=12", "HEAD"])?;
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])?];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch])?);
        watched.push(git(&["rev-parse", "--git-path", "packed-refs"])?);
    }
    for path in watched.iter().filter(|p| std::path::Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={path}");
    }
    Some(rev)
}
