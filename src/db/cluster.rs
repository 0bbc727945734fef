//! The private PostgreSQL cluster used when no `DATABASE_URL` is set.
//!
//! Layout under the data folder:
//! - `postgres/data/`: the cluster (PGDATA), `postgres/server.log`: its log. When running
//!   as root, `postgres/` belongs to an unprivileged user, since PostgreSQL refuses root.
//! - `postgres.password`: the generated superuser password (mode 0600).
//! - `postgres.start.lock`, `postgres.users.lock`: coordination between processes.
//!
//! Every process using the cluster (the service, a CLI command, a test binary) holds a
//! shared `flock` on the users lock for as long as it uses it. Whoever finds no other user
//! when leaving stops the cluster; starting and stopping are serialized by the start lock.
//! Locks die with their process, so a `kill -9` never leaves a lock behind, and the next
//! start simply reuses a still-running cluster or restarts it after removing a stale
//! `postmaster.pid`.

use anyhow::{anyhow, bail, Context};
use rand::distr::{Alphanumeric, SampleString};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const SUPERUSER: &str = "passfold";
const DATABASE: &str = "passfold";
/// System user that owns the cluster when passfold runs as root.
const FALLBACK_SYSTEM_USER: &str = "passfold-pg";

pub struct LocalCluster {
    pgdata: PathBuf,
    bin: PathBuf,
    port: u16,
    password: String,
    run_as: Option<(u32, u32)>,
    start_lock: PathBuf,
    users_lock: PathBuf,
    /// Our shared hold on the users lock; `None` once we have let go.
    hold: Option<File>,
}

impl LocalCluster {
    /// Starts the cluster under `data_dir`, or joins it if it is already running.
    pub fn start(data_dir: &Path, bin_dir: Option<&Path>) -> anyhow::Result<Self> {
        fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create the data folder {}", data_dir.display()))?;
        let data_dir = data_dir
            .canonicalize()
            .with_context(|| format!("cannot resolve the data folder {}", data_dir.display()))?;
        let bin = find_server_binaries(bin_dir)?;
        let start_lock = data_dir.join("postgres.start.lock");
        let users_lock = data_dir.join("postgres.users.lock");

        let starting = open_lock(&start_lock)?;
        starting.lock()?;
        let hold = open_lock(&users_lock)?;
        hold.lock_shared()?;

        let run_as = unprivileged_identity(&data_dir)?;
        let root = cluster_root(&data_dir, run_as)?;
        let password = load_or_create_password(&data_dir)?;
        let mut cluster = LocalCluster {
            pgdata: root.join("data"),
            bin,
            port: 0,
            password,
            run_as,
            start_lock,
            users_lock,
            hold: Some(hold),
        };
        let ready = cluster.bring_up(&root);
        // Let go of the start lock before `cluster` can be dropped on failure: dropping it
        // takes the start lock again to decide whether to stop the server.
        drop(starting);
        ready?;
        Ok(cluster)
    }

    fn bring_up(&mut self, root: &Path) -> anyhow::Result<()> {
        if !self.pgdata.join("PG_VERSION").exists() {
            self.initdb(root)?;
        }
        self.port = match self.running_port() {
            Some(port) => port,
            None => self.start_server(root)?,
        };
        self.ensure_database()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// URL of passfold's own database in the cluster.
    pub fn database_url(&self) -> String {
        self.url_for(DATABASE)
    }

    /// URL of the maintenance database, for creating and dropping other databases (tests).
    pub fn admin_url(&self) -> String {
        self.url_for("postgres")
    }

    fn url_for(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    /// Lets go of the cluster, stopping it when no other process uses it.
    pub fn release(&mut self) {
        let Some(hold) = self.hold.take() else { return };
        let Ok(starting) = open_lock(&self.start_lock) else {
            return;
        };
        if starting.lock().is_err() {
            return;
        }
        drop(hold);
        let Ok(probe) = open_lock(&self.users_lock) else {
            return;
        };
        if probe.try_lock().is_ok() {
            tracing::info!("stopping the private PostgreSQL cluster");
            let out = self
                .pg_command("pg_ctl")
                .args(["stop", "-m", "fast", "-w", "-t", "60", "-D"])
                .arg(&self.pgdata)
                .output();
            if let Err(e) = check(out, "pg_ctl stop") {
                tracing::warn!(error = %e, "stopping the private cluster failed");
            }
        } else {
            tracing::info!(
                "the private PostgreSQL cluster stays up: another passfold process uses it"
            );
        }
    }

    fn pg_command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
            if let Some(parent) = self.pgdata.parent() {
                cmd.current_dir(parent);
            }
        }
        // Own process group: a Ctrl-C meant for passfold must not reach PostgreSQL directly;
        // passfold stops it itself, after finishing its in-flight requests.
        cmd.process_group(0);
        cmd
    }

    fn initdb(&self, root: &Path) -> anyhow::Result<()> {
        tracing::info!(pgdata = %self.pgdata.display(), "initialising a private PostgreSQL cluster");
        if self.pgdata.exists() {
            // Left by an interrupted initdb: nothing in it can be used.
            fs::remove_dir_all(&self.pgdata)?;
        }
        let pwfile = root.join("initdb.pw");
        write_private(&pwfile, self.password.as_bytes(), self.run_as)?;
        let out = self
            .pg_command("initdb")
            .arg("-D")
            .arg(&self.pgdata)
            .args([
                "-U",
                SUPERUSER,
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--no-locale",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output();
        let _ = fs::remove_file(&pwfile);
        check(out, "initdb")?;
        let mut conf = OpenOptions::new()
            .append(true)
            .open(self.pgdata.join("postgresql.conf"))?;
        // Loopback TCP only: unix socket paths break on long data-folder paths.
        writeln!(
            conf,
            "\n# passfold\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\nmax_connections = 200\n"
        )?;
        Ok(())
    }

    /// The port of a cluster that is up and answering; removes a stale `postmaster.pid`.
    fn running_port(&self) -> Option<u16> {
        let pid_file = self.pgdata.join("postmaster.pid");
        let text = fs::read_to_string(&pid_file).ok()?;
        let mut lines = text.lines();
        let pid: u32 = lines.next()?.trim().parse().ok()?;
        let port: u16 = lines.nth(2)?.trim().parse().ok()?;
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let alive = matches!(comm.trim(), "postgres" | "postmaster");
        if alive {
            for _ in 0..50 {
                if TcpStream::connect_timeout(
                    &(Ipv4Addr::LOCALHOST, port).into(),
                    Duration::from_millis(200),
                )
                .is_ok()
                {
                    return Some(port);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            tracing::warn!(
                pid,
                "a PostgreSQL process holds the cluster but does not answer"
            );
            return None;
        }
        tracing::warn!(pid, "removing a stale postmaster.pid left by a crash");
        let _ = fs::remove_file(&pid_file);
        None
    }

    fn start_server(&self, root: &Path) -> anyhow::Result<u16> {
        let port = free_port()?;
        tracing::info!(port, "starting the private PostgreSQL cluster");
        let out = self
            .pg_command("pg_ctl")
            .arg("-D")
            .arg(&self.pgdata)
            .arg("-l")
            .arg(root.join("server.log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(format!("-p {port} {}", server_settings(&memory_total())))
            .arg("start")
            .output();
        check(out, "pg_ctl start").with_context(|| {
            format!(
                "see {} for PostgreSQL's own log",
                root.join("server.log").display()
            )
        })?;
        Ok(port)
    }

    fn ensure_database(&self) -> anyhow::Result<()> {
        use diesel::{Connection, PgConnection, RunQueryDsl};
        let mut conn = PgConnection::establish(&self.admin_url())
            .map_err(|e| anyhow!("cannot connect to the private cluster: {e}"))?;
        match diesel::sql_query(format!("CREATE DATABASE {DATABASE}")).execute(&mut conn) {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("already exists") => Ok(()),
            Err(e) => Err(anyhow!("cannot create the database: {e}")),
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.release();
    }
}

/// The machine's memory in bytes (`/proc/meminfo`), if known.
fn memory_total() -> Option<u64> {
    let info = fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = info
        .lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Settings the private cluster runs with, given on every start so that an existing
/// cluster takes them too. PostgreSQL's defaults (128 MB of shared buffers, 1 GB of WAL
/// between checkpoints) are sized for any machine: with a million members a batch job's
/// pages no longer fit, each backend writes out dirty pages itself, and checkpoints come
/// every few seconds, each first change of a page after one logging the whole page. A
/// quarter of the memory (between 128 MB and 2 GB) for shared buffers, 4 GB of WAL
/// between checkpoints, and compressed full-page images, as a tuned server would have.
fn server_settings(memory: &Option<u64>) -> String {
    const MB: u64 = 1024 * 1024;
    let buffers = memory.map_or(128 * MB, |m| (m / 4).clamp(128 * MB, 2048 * MB));
    format!(
        "-c shared_buffers={}MB -c max_wal_size=4GB -c wal_compression=on",
        buffers / MB
    )
}

fn open_lock(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))
}

fn check(out: std::io::Result<Output>, what: &str) -> anyhow::Result<()> {
    let out = out.with_context(|| format!("cannot run {what}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tail: Vec<&str> = stderr.lines().chain(stdout.lines()).rev().take(6).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    bail!("{what} failed ({}): {}", out.status, tail.join(" | "))
}

/// Finds `initdb`, `pg_ctl` and `postgres`: the configured folder, `pg_config --bindir`,
/// the newest `/usr/lib/postgresql/*/bin` (Debian, Ubuntu), then `PATH`.
fn find_server_binaries(configured: Option<&Path>) -> anyhow::Result<PathBuf> {
    let has_all = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    if let Some(dir) = configured {
        if has_all(dir) {
            return Ok(dir.to_path_buf());
        }
        bail!(
            "PASSFOLD_PG_BIN={} does not hold initdb, pg_ctl and postgres",
            dir.display()
        );
    }
    let mut candidates = Vec::new();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        if out.status.success() {
            candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
    }
    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(u32, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                Some((v, e.path().join("bin")))
            })
            .collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev().map(|(_, p)| p));
    }
    candidates.push(PathBuf::from("/usr/local/pgsql/bin"));
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates.into_iter().find(|d| has_all(d)).ok_or_else(|| {
        anyhow!(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: install PostgreSQL's \
             server package (Debian/Ubuntu: apt-get install postgresql), set PASSFOLD_PG_BIN to their \
             folder, or set DATABASE_URL to an existing server"
        )
    })
}

/// PostgreSQL refuses to run as root: then the cluster runs as the user who owns it
/// already, or else as `postgres` (or a system user of our own, created on first need).
fn unprivileged_identity(data_dir: &Path) -> anyhow::Result<Option<(u32, u32)>> {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    if let Ok(meta) = fs::metadata(data_dir.join("postgres")) {
        if meta.uid() != 0 {
            return Ok(Some((meta.uid(), meta.gid())));
        }
    }
    for name in ["postgres", FALLBACK_SYSTEM_USER] {
        if let Ok(Some(user)) = nix::unistd::User::from_name(name) {
            return Ok(Some((user.uid.as_raw(), user.gid.as_raw())));
        }
    }
    tracing::info!(
        user = FALLBACK_SYSTEM_USER,
        "running as root: creating a system user for PostgreSQL"
    );
    let out = Command::new("useradd")
        .args([
            "--system",
            "--user-group",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            FALLBACK_SYSTEM_USER,
        ])
        .output();
    check(out, "useradd").context("running as root needs an unprivileged user for PostgreSQL")?;
    let user = nix::unistd::User::from_name(FALLBACK_SYSTEM_USER)?
        .ok_or_else(|| anyhow!("user {FALLBACK_SYSTEM_USER} was not created"))?;
    Ok(Some((user.uid.as_raw(), user.gid.as_raw())))
}

/// The folder holding the cluster. As root, it belongs to the unprivileged user; if that
/// user cannot reach the data folder (e.g. under `/root`), the cluster lives under
/// `/var/lib/passfold/clusters/` and `postgres` in the data folder links to it.
fn cluster_root(data_dir: &Path, run_as: Option<(u32, u32)>) -> anyhow::Result<PathBuf> {
    let link = data_dir.join("postgres");
    if let Ok(target) = fs::read_link(&link) {
        return Ok(target);
    }
    let Some((uid, gid)) = run_as else {
        fs::create_dir_all(&link)?;
        return Ok(link);
    };
    let reachable = Command::new("/bin/sh")
        .args(["-c", "cd \"$1\"", "sh"])
        .arg(data_dir)
        .uid(uid)
        .gid(gid)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let root = if reachable || link.exists() {
        link
    } else {
        use sha2::Digest;
        let id = hex::encode(&sha2::Sha256::digest(data_dir.as_os_str().as_encoded_bytes())[..8]);
        let elsewhere = PathBuf::from("/var/lib/passfold/clusters").join(id);
        tracing::warn!(
            cluster = %elsewhere.display(),
            "the PostgreSQL user cannot reach the data folder; keeping the cluster outside it, linked from it"
        );
        fs::create_dir_all(&elsewhere)?;
        fs::set_permissions("/var/lib/passfold", fs::Permissions::from_mode(0o755))?;
        fs::set_permissions(
            "/var/lib/passfold/clusters",
            fs::Permissions::from_mode(0o755),
        )?;
        std::os::unix::fs::symlink(&elsewhere, &link)?;
        elsewhere
    };
    fs::create_dir_all(&root)?;
    nix::unistd::chown(&root, Some(uid.into()), Some(gid.into()))?;
    fs::set_permissions(&root, fs::Permissions::from_mode(0o700))?;
    Ok(root)
}

fn load_or_create_password(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("postgres.password");
    if let Ok(text) = fs::read_to_string(&path) {
        let text = text.trim().to_string();
        if !text.is_empty() {
            return Ok(text);
        }
    }
    let password = Alphanumeric.sample_string(&mut rand::rng(), 32);
    write_private(&path, password.as_bytes(), None)?;
    Ok(password)
}

fn write_private(path: &Path, bytes: &[u8], owner: Option<(u32, u32)>) -> anyhow::Result<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes)?;
    if let Some((uid, gid)) = owner {
        nix::unistd::chown(path, Some(uid.into()), Some(gid.into()))?;
    }
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::server_settings;

    #[test]
    fn shared_buffers_are_a_quarter_of_memory_within_bounds() {
        const GB: u64 = 1024 * 1024 * 1024;
        assert!(server_settings(&Some(24 * GB)).contains("shared_buffers=2048MB"));
        assert!(server_settings(&Some(2 * GB)).contains("shared_buffers=512MB"));
        assert!(server_settings(&Some(GB / 4)).contains("shared_buffers=128MB"));
        assert!(server_settings(&None).contains("shared_buffers=128MB"));
    }
}
