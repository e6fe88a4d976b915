//! `drainpipe drains plan|apply --file drains.toml`: apps' drains managed as code against
//! Heroku's Platform API (drainpipe-heroku). `plan` prints what would change, like
//! `terraform plan`; `apply` does it, removing drains only with `--yes`.

use anyhow::Context as _;
use drainpipe_heroku::{api_key, Desired, Plan, PlatformApi};

use crate::config::{DrainsAction, DrainsApplyArgs, DrainsOptions, DrainsPlanArgs};
use crate::{print_all, Exit};

pub async fn run(action: DrainsAction) -> anyhow::Result<()> {
    match action {
        DrainsAction::Plan(args) => plan(args).await,
        DrainsAction::Apply(args) => apply(args).await,
    }
}

/// The file read and the API reached with the key the Heroku CLI would use.
fn open(options: &DrainsOptions) -> anyhow::Result<(PlatformApi, Desired)> {
    let file = options.file.display();
    let text = std::fs::read_to_string(&options.file).with_context(|| format!("cannot read {file}"))?;
    let desired = Desired::parse(&text, |name| std::env::var(name).ok())
        .map_err(|problems| Exit { code: 2, message: format!("{file}:\n{problems}") })?;
    let key = api_key(&options.heroku_api_url, |name| std::env::var(name).ok())?;
    Ok((PlatformApi::new(options.heroku_api_url.clone(), key)?, desired))
}

async fn plan(args: DrainsPlanArgs) -> anyhow::Result<()> {
    let (api, desired) = open(&args.drains)?;
    let plan = drainpipe_heroku::plan(&api, &desired, args.drains.remove_others).await;
    let out = if args.drain_tokens { plan.drain_token_map() } else { plan.to_string() };
    print_all(format!("{out}\n").as_bytes())?;
    failed_apps(&plan)?;
    if args.check && plan.changes() {
        let message = format!("Heroku's drains differ from {}", args.drains.file.display());
        return Err(Exit { code: 1, message }.into());
    }
    Ok(())
}

async fn apply(args: DrainsApplyArgs) -> anyhow::Result<()> {
    let (api, desired) = open(&args.drains)?;
    let plan = drainpipe_heroku::plan(&api, &desired, args.drains.remove_others).await;
    print_all(format!("{plan}\n").as_bytes())?;
    failed_apps(&plan)?;
    let applied = drainpipe_heroku::apply(&api, &plan, args.yes)
        .await
        .map_err(|refused| Exit { code: 1, message: refused.to_string() })?;
    let mut tokens = plan.drain_tokens.clone();
    tokens.extend(applied.new_tokens.iter().cloned());
    let map = drainpipe_heroku::drain_token_map(&tokens);
    print_all(format!("Applied {} change(s). serve's drain tokens: {map}\n", applied.done).as_bytes())?;
    if !applied.failed.is_empty() {
        let message = format!("{} change(s) failed:\n{}", applied.failed.len(), applied.failed.join("\n"));
        return Err(Exit { code: 1, message }.into());
    }
    Ok(())
}

/// Apps that could not be planned fail the command (after the rest was planned and shown).
fn failed_apps(plan: &Plan) -> anyhow::Result<()> {
    if plan.problems.is_empty() {
        return Ok(());
    }
    let message = format!("{} app(s) could not be planned (see above); nothing was changed", plan.problems.len());
    Err(Exit { code: 1, message }.into())
}
