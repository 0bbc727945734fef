//! The command line (contract: `passfold serve`, `passfold worker`,
//! `passfold merchant create --name NAME`, `passfold staff create --merchant ID --email EMAIL
//! --role ROLE` with the password on standard input).

use crate::configuration::Settings;
use crate::db::{self, Database};
use crate::domain::{Email, MerchantName, Password, Role};
use crate::models::Merchant;
use crate::staff::{Refusal, StaffError};
use crate::startup::Application;
use crate::telemetry;
use anyhow::Context;
use clap::{Parser, Subcommand};
use diesel::Connection;

#[derive(Parser, Debug)]
#[command(
    name = "passfold",
    version,
    about = "Wallet loyalty cards and gift cards, issued and kept live"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run migrations, serve HTTP and run the background workers (the default).
    Serve,
    /// Run only the background workers.
    Worker {
        /// Run every time-based job once, drain the outbox, print a JSON report and exit.
        #[arg(long)]
        once: bool,
        /// With --once: the instant the jobs run as of (RFC 3339); now when absent.
        #[arg(long, requires = "once", value_parser = parse_instant)]
        at: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Manage merchants.
    Merchant {
        #[command(subcommand)]
        action: MerchantCommand,
    },
    /// Manage console users.
    Staff {
        #[command(subcommand)]
        action: StaffCommand,
    },
    /// Work with passes without the server.
    Pass {
        #[command(subcommand)]
        action: PassCommand,
    },
    /// Check the books.
    Ledger {
        #[command(subcommand)]
        action: LedgerCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum LedgerCommand {
    /// Check every merchant's ledger: each balance equals the sum of its activities, each
    /// activity's balance_after is the running total. Prints a JSON report; exits 1 when
    /// anything is off.
    Verify,
}

#[derive(Subcommand, Debug)]
pub enum PassCommand {
    /// Render and sign a pass from a template folder and sample data, to try a design.
    Render {
        /// Folder with template.json and the PNG images.
        #[arg(long)]
        template: std::path::PathBuf,
        /// JSON object of placeholder name -> value; money as {"amount": 1250, "currency": "EUR"}.
        #[arg(long)]
        data: std::path::PathBuf,
        /// Where to write the .pkpass.
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum StaffCommand {
    /// Create a console user of a merchant; reads the password from standard input (one
    /// line, at least 10 characters) and prints {"staff_id": ...}.
    Create {
        #[arg(long)]
        merchant: String,
        #[arg(long)]
        email: String,
        /// owner, designer or cashier.
        #[arg(long)]
        role: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum MerchantCommand {
    /// Create a merchant and print its id and its first admin and pos keys as JSON.
    Create {
        #[arg(long)]
        name: String,
    },
}

/// For a one-off command: the database (kept open as long as the connection is used, so a
/// private cluster stays up), migrated, and one connection to it.
fn one_connection(settings: &Settings) -> anyhow::Result<(Database, diesel::PgConnection)> {
    let database = Database::open(settings)?;
    db::migrate(&database.url)?;
    let conn =
        diesel::PgConnection::establish(&database.url).context("cannot connect to the database")?;
    Ok((database, conn))
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    // Before anything can touch jsonwebtoken: its provider is chosen once per process.
    crate::google::rs256::install();
    let settings = Settings::from_env()?;
    telemetry::init(settings.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings),
        Command::Worker { once: false, .. } => worker(settings),
        Command::Worker { once: true, at } => worker_once(settings, at),
        Command::Ledger {
            action: LedgerCommand::Verify,
        } => {
            let (_database, mut conn) = one_connection(&settings)?;
            let report = crate::giftcard::verify::verify(&mut conn, None)?;
            println!("{}", serde_json::to_string(&report)?);
            if report.problems.is_empty() {
                Ok(())
            } else {
                // An error rather than exit(1): the database (a private cluster) still
                // closes in order.
                Err(anyhow::anyhow!(
                    "the ledger is off in {} places (listed above)",
                    report.problems.len()
                ))
            }
        }
        Command::Merchant {
            action: MerchantCommand::Create { name },
        } => {
            let name = MerchantName::parse(&name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
            let (_database, mut conn) = one_connection(&settings)?;
            let created = Merchant::create(&mut conn, &name)?;
            println!("{}", serde_json::to_string(&created)?);
            Ok(())
        }
        Command::Staff {
            action:
                StaffCommand::Create {
                    merchant,
                    email,
                    role,
                },
        } => create_staff(&settings, &merchant, &email, &role),
        Command::Pass {
            action:
                PassCommand::Render {
                    template,
                    data,
                    out,
                },
        } => crate::apple::sample::render_to_file(&settings, &template, &data, &out),
    }
}

/// `passfold staff create`: everything the operator typed is checked before the database
/// is opened, each problem named.
fn create_staff(
    settings: &Settings,
    merchant: &str,
    email: &str,
    role: &str,
) -> anyhow::Result<()> {
    let merchant_id = uuid::Uuid::parse_str(merchant.trim())
        .map_err(|_| anyhow::anyhow!("--merchant: {merchant:?} is not a merchant id (a UUID)"))?;
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let role = Role::parse(role.trim()).ok_or_else(|| {
        anyhow::anyhow!("--role: {role:?} is not one of owner, designer, cashier")
    })?;
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let typed = line.strip_suffix('\n').unwrap_or(&line);
    let typed = typed.strip_suffix('\r').unwrap_or(typed);
    let password = Password::parse_new(typed)
        .map_err(|e| anyhow::anyhow!("the password on standard input is refused: {e}"))?;
    let (_database, mut conn) = one_connection(settings)?;
    let now = crate::clock::Clock::system().now();
    match crate::staff::accounts::create(&mut conn, merchant_id, &email, role, &password, now) {
        Ok(member) => {
            println!("{}", serde_json::json!({ "staff_id": member.id }));
            Ok(())
        }
        Err(StaffError::Refused(Refusal::NotFound)) => Err(anyhow::anyhow!(
            "--merchant: no merchant has the id {merchant_id}"
        )),
        Err(StaffError::Refused(Refusal::EmailTaken)) => Err(anyhow::anyhow!(
            "--email: {email} already has an account at this merchant"
        )),
        Err(e) => Err(anyhow::anyhow!("cannot create the account: {e}")),
    }
}

fn serve(mut settings: Settings) -> anyhow::Result<()> {
    let database = Database::open(&settings)?;
    settings.database_url = Some(database.url.clone());
    db::migrate(&database.url)?;
    let pool = db::build_pool(&database.url, settings.db_pool_size)?;
    actix_web::rt::System::new().block_on(async move {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let app = Application::build(settings.clone(), pool)?;
        if let Some(warning) = settings.plain_http_warning() {
            tracing::warn!("{warning}");
        }
        let workers = app.start_workers(stopped);
        tracing::info!(
            bind = %settings.bind,
            port = app.port(),
            public_url = %settings.public_url,
            "passfold is serving"
        );
        app.run_until_stopped().await?;
        tracing::info!("HTTP server stopped; stopping workers");
        let _ = stop.send(true);
        for w in workers {
            let _ = w.await;
        }
        anyhow::Ok(())
    })?;
    drop(database);
    Ok(())
}

fn worker(settings: Settings) -> anyhow::Result<()> {
    let database = Database::open(&settings)?;
    db::migrate(&database.url)?;
    let pool = db::build_pool(&database.url, settings.db_pool_size)?;
    let wallets = crate::app::Wallets::load(&settings)?;
    actix_web::rt::System::new().block_on(async {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let workers = crate::workers::spawn_all(
            pool,
            &settings,
            wallets.apns,
            wallets.google,
            crate::metrics::Metrics::new(),
            crate::clock::Clock::system(),
            stopped,
        );
        tracing::info!("passfold worker is running; stop it with SIGINT or SIGTERM");
        wait_for_shutdown_signal().await;
        let _ = stop.send(true);
        for w in workers {
            let _ = w.await;
        }
    });
    drop(database);
    Ok(())
}

fn parse_instant(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("not an RFC 3339 instant such as 2026-12-24T09:00:00+03:00: {e}"))
}

/// `passfold worker --once [--at T]`: what the worker would do passing `T`, done now.
fn worker_once(
    settings: Settings,
    at: Option<chrono::DateTime<chrono::Utc>>,
) -> anyhow::Result<()> {
    let database = Database::open(&settings)?;
    db::migrate(&database.url)?;
    let pool = db::build_pool_keeping(&database.url, settings.db_pool_size, 0)?;
    let wallets = crate::app::Wallets::load(&settings)?;
    let at = at.unwrap_or_else(chrono::Utc::now);
    let report = actix_web::rt::System::new().block_on(crate::workers::run_once(
        pool,
        &settings,
        wallets.apns,
        wallets.google,
        crate::metrics::Metrics::new(),
        at,
    ))?;
    println!("{}", serde_json::to_string(&report)?);
    drop(database);
    Ok(())
}

async fn wait_for_shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
