//! Command line: `serve` (default), organization / key / token administration, evaluations.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use idverify_store::{RatePolicy, Store};

use crate::app;
use crate::config::{Config, Overrides};
use crate::engines;

#[derive(Parser, Debug)]
#[command(name = "idverify", version, about = "Self-hostable identity verification API")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Args, Debug, Default, Clone)]
pub struct GlobalArgs {
    /// A TOML file overriding config/default.toml (also IDVERIFY_CONFIG).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Listen address (IDVERIFY_LISTEN).
    #[arg(long, global = true)]
    pub listen: Option<String>,
    /// SQLite data directory (IDVERIFY_DATA_DIR).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Models directory (IDVERIFY_MODELS_DIR).
    #[arg(long, global = true)]
    pub models_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Print the effective configuration (secrets redacted).
    Config,
    /// GET /healthz on the configured listen address (0.0.0.0 and [::] as loopback), 2 s at most:
    /// exit 0 on 200, 1 otherwise with the reason on stderr (a container's HEALTHCHECK).
    Healthcheck,
    /// Organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Token balances.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Accuracy evaluations on labelled data.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Refit calibrations.
    #[command(subcommand)]
    Calibrate(CalibrateCommand),
    /// CPU cost of one verify on this machine, stage by stage (real models, generated images);
    /// last line: `cpu_ms_per_verify=… verifies_per_core_s=… scan_ms=… face_ms=…`.
    Bench {
        /// Timed calls per stage (after one warm-up call); the median is reported.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
        iterations: u16,
    },
}

#[derive(Subcommand, Debug)]
pub enum OrgCommand {
    /// Create an organization with a first API key; the key is printed alone on the last line.
    Create {
        name: String,
        #[arg(long, default_value_t = 0)]
        tokens: i64,
        #[arg(long, default_value = "default")]
        key_name: String,
    },
    /// Balance, keys and recent ledger of an organization (by id or name).
    Show {
        org: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Set this organization's own rate limit, or `--clear` to use the configured default.
    RateLimit {
        org: String,
        #[arg(long)]
        per_second: Option<f64>,
        #[arg(long)]
        burst: Option<u32>,
        #[arg(long)]
        clear: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Create another key; printed alone on the last line, shown only this once.
    Create {
        org: String,
        #[arg(long, default_value = "default")]
        name: String,
    },
    List {
        org: String,
    },
    Revoke {
        key_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokensCommand {
    /// Add tokens to an organization's balance.
    Add {
        org: String,
        amount: i64,
        #[arg(long, default_value = "top-up")]
        note: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum EvalCommand {
    /// Face pairs (`img_a,img_b,same[,fold]`): accuracy, realised FMR/FNMR at the configured
    /// threshold, TAR@FMR, EER, AUC.
    Faces {
        #[arg(long)]
        pairs: PathBuf,
        /// Paste each genuine pair's first face small onto a synthetic document first.
        #[arg(long)]
        document_style: bool,
        /// `all`: also score every cross-identity pair of the file's images (identity = the
        /// image's folder): FMR at the threshold, FNMR at FMR 1e-3 and 1e-4, and with folds the
        /// held-out-fold figure.
        #[arg(long, value_parser = ["pairs", "all"], default_value = "pairs")]
        impostors: String,
        /// Write DET curves (FNMR against FMR, log scales) of dlib, SFace, the fused score and the
        /// cascade's operating points into this folder as SVG (needs SFace: face_recognizers other
        /// than "dlib").
        #[arg(long, value_name = "DIR")]
        plot: Option<PathBuf>,
        /// Keep each image's embeddings in this file: a later run of the same pairs file with the
        /// same models reads them instead of embedding again.
        #[arg(long, value_name = "FILE")]
        embedding_cache: Option<PathBuf>,
        /// Relabel the pairs this file lists (`img_a,img_b,same,note`: the data set's known label
        /// errors, e.g. docs/lfw-dev-errata.csv) before any figure; the report says how many.
        #[arg(long, value_name = "FILE")]
        errata: Option<PathBuf>,
    },
    /// MRZ documents: exact lines, CER, false-valid, time.
    Mrz {
        #[arg(long)]
        manifest: PathBuf,
    },
    /// Card fronts (visual zone): per-field exact match, documents with every field, false-valid,
    /// median CPU per scan. The manifest is what `scripts/synth_fronts.py` writes.
    Viz {
        #[arg(long)]
        manifest: PathBuf,
    },
    /// PDF417 barcode images: decoded payloads.
    Pdf417 {
        #[arg(long)]
        manifest: PathBuf,
    },
    /// AAMVA payload texts: parsed fields.
    Aamva {
        #[arg(long)]
        manifest: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum CalibrateCommand {
    /// Fit the distance → confidence calibration on labelled pairs and write it as JSON.
    Faces {
        #[arg(long)]
        pairs: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// `all` (default): every pair of the file's images (identity = the image's folder);
        /// `pairs`: only the file's own pairs.
        #[arg(long, value_parser = ["pairs", "all"], default_value = "all")]
        impostors: String,
    },
}

pub fn overrides(global: &GlobalArgs) -> Overrides {
    Overrides {
        config_file: global.config.clone(),
        listen: global.listen.clone(),
        data_dir: global.data_dir.clone(),
        models_dir: global.models_dir.clone(),
    }
}

pub async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => app::serve(config).await,
        Command::Config => {
            println!("{config:#?}");
            Ok(())
        }
        Command::Healthcheck => {
            let addr = crate::healthcheck::probe_address(config.listen_addr());
            tokio::task::spawn_blocking(move || crate::healthcheck::check(addr, crate::healthcheck::TIMEOUT))
                .await?
        }
        Command::Org(cmd) => org(cmd, &app::connect_store(&config).await?).await,
        Command::Key(cmd) => key(cmd, &app::connect_store(&config).await?).await,
        Command::Tokens(TokensCommand::Add { org, amount, note }) => {
            let store = app::connect_store(&config).await?;
            if amount <= 0 {
                bail!("amount must be positive");
            }
            let org = find_org(&store, &org).await?;
            let balance = store.top_up(&org.id, amount, &note).await?;
            println!("balance {balance}");
            Ok(())
        }
        Command::Eval(cmd) => eval(cmd, config).await,
        Command::Bench { iterations } => {
            let settings = app::engine_settings(&config);
            let limits = app::image_limits(&config);
            let opts = crate::bench::BenchOptions { iterations: iterations.into() };
            tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                crate::bench::run(&settings, limits, &opts, &mut std::io::stdout().lock())?;
                Ok(())
            })
            .await?
        }
        Command::Calibrate(CalibrateCommand::Faces { pairs, out, impostors }) => {
            let settings = app::engine_settings(&config);
            tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                let engine = engines::load_face_for_calibration(&settings)?;
                let mut stdout = std::io::stdout().lock();
                let all = impostors == "all";
                let calibration = idverify_face::calibration::fit(&engine, &pairs, all, &mut stdout)?;
                calibration.write_json_file(&out)?;
                writeln!(stdout, "wrote {}", out.display())?;
                Ok(())
            })
            .await?
        }
    }
}

async fn find_org(store: &Store, id_or_name: &str) -> anyhow::Result<idverify_store::Org> {
    store.find_org(id_or_name).await?.with_context(|| format!("no organization `{id_or_name}`"))
}

async fn org(cmd: OrgCommand, store: &Store) -> anyhow::Result<()> {
    match cmd {
        OrgCommand::Create { name, tokens, key_name } => {
            if tokens < 0 {
                bail!("--tokens cannot be negative");
            }
            let org = store.create_org(&name, tokens).await?;
            let key = store.create_key(&org.id, &key_name).await?;
            println!("organization {} ({}) balance {}", org.name, org.id, org.balance);
            println!("api key id {} (store it now: it is shown only once)", key.key_id);
            println!("{}", key.secret);
            Ok(())
        }
        OrgCommand::Show { org, limit } => {
            let org = find_org(store, &org).await?;
            println!("organization {} ({})", org.name, org.id);
            println!("balance {}", store.balance(&org.id).await?);
            for k in store.list_keys(&org.id).await? {
                println!("key {k:?}");
            }
            for entry in store.ledger(&org.id, limit).await? {
                println!("ledger {entry:?}");
            }
            Ok(())
        }
        OrgCommand::RateLimit { org, per_second, burst, clear } => {
            let org = find_org(store, &org).await?;
            let policy = match (clear, per_second, burst) {
                (true, _, _) => None,
                (false, Some(per_second), Some(burst)) if per_second > 0.0 && burst > 0 => {
                    Some(RatePolicy { per_second, burst })
                }
                _ => bail!("give --per-second X --burst N (both positive), or --clear"),
            };
            store.set_rate_limit(&org.id, policy).await?;
            println!("rate limit for {} set to {:?}", org.name, policy.map(|p| (p.per_second, p.burst)));
            Ok(())
        }
    }
}

async fn key(cmd: KeyCommand, store: &Store) -> anyhow::Result<()> {
    match cmd {
        KeyCommand::Create { org, name } => {
            let org = find_org(store, &org).await?;
            let key = store.create_key(&org.id, &name).await?;
            println!("api key id {} for {} (store it now: it is shown only once)", key.key_id, org.name);
            println!("{}", key.secret);
        }
        KeyCommand::List { org } => {
            let org = find_org(store, &org).await?;
            for k in store.list_keys(&org.id).await? {
                println!("{k:?}");
            }
        }
        KeyCommand::Revoke { key_id } => {
            if !store.revoke_key(&key_id).await? {
                bail!("no active key `{key_id}`");
            }
            println!("revoked {key_id}");
        }
    }
    Ok(())
}

async fn eval(cmd: EvalCommand, config: Config) -> anyhow::Result<()> {
    let settings = app::engine_settings(&config);
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        match cmd {
            EvalCommand::Faces { pairs, document_style, impostors, plot, embedding_cache, errata } => {
                let engine = engines::load_face(&settings)?;
                let opts = idverify_face::eval::EvalOptions {
                    document_style,
                    all_impostors: impostors == "all",
                    plot_dir: plot,
                    embedding_cache,
                    errata,
                };
                idverify_face::eval::run(&engine, &pairs, opts, &mut stdout)?;
            }
            EvalCommand::Mrz { manifest } => {
                let engine = engines::load_document(&settings)?;
                idverify_document::eval::mrz(&engine, &manifest, &mut stdout)?;
            }
            EvalCommand::Viz { manifest } => {
                let engine = engines::load_document(&settings)?;
                idverify_document::eval::viz(&engine, &manifest, &mut stdout)?;
            }
            EvalCommand::Pdf417 { manifest } => {
                idverify_document::eval::pdf417(&manifest, &mut stdout)?;
            }
            EvalCommand::Aamva { manifest } => {
                idverify_document::eval::aamva(&manifest, &mut stdout)?;
            }
        }
        Ok(())
    })
    .await?
}
