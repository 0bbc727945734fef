//! What the benches with a million members share: a release server on its own private
//! cluster, a merchant and a program made through the CLI and the API, and members with
//! their passes inserted by SQL (names from the lists below, so that a surname stem
//! matches 1/60 of the members). Included by `#[path]` from each bench.

#![allow(dead_code)]

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_passfold");

#[rustfmt::skip]
pub const FIRST: &[&str] = &[
    "Иван", "Мария", "Алексей", "Ольга", "Дмитрий", "Анна", "Сергей", "Елена", "Пётр", "Наталья",
    "Андрей", "Татьяна", "Михаил", "Светлана", "Николай", "Юлия", "John", "Emma", "Liam", "Olivia",
    "Noah", "Ava", "Lucas", "Mia", "Jonas", "Lea", "Mateo", "Sofia", "Hugo", "Chloé",
];
#[rustfmt::skip]
pub const LAST: &[&str] = &[
    "Иванов", "Петрова", "Смирнов", "Кузнецова", "Попов", "Соколова", "Лебедев", "Козлова",
    "Новиков", "Морозова", "Волков", "Алексеева", "Степанов", "Павлова", "Семёнов", "Голубева",
    "Виноградов", "Богданова", "Воробьёв", "Фёдорова", "Михайлов", "Беляева", "Тарасов",
    "Белова", "Комаров", "Орлова", "Киселёв", "Макарова", "Андреев", "Ковалёва", "Smith",
    "Johnson", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Thomas", "Roberts", "Walker",
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "García", "Martínez", "López",
    "Dubois", "Moreau", "Laurent", "Lefèvre", "Rossi", "Russo", "Bianchi", "Jansen", "de Vries",
    "Nowak", "Kowalski", "Novák",
];

pub fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// p50, p95, p99.
pub fn summary(mut ms: Vec<f64>) -> (f64, f64, f64) {
    ms.sort_by(|a, b| a.total_cmp(b));
    (pct(&ms, 0.5), pct(&ms, 0.95), pct(&ms, 0.99))
}

/// A `/proc/<pid>/status` figure in kB (`VmRSS`, `VmHWM`...); 0 when unreadable.
pub fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn sql_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("'{}'", s.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(",")
}

/// A running server with one merchant and one program; stopped (and its cluster with it)
/// and its folder removed however the bench ends.
pub struct Bench {
    pub dir: PathBuf,
    pub port: u16,
    pub base: String,
    pub client: reqwest::Client,
    pub admin: String,
    pub pos: String,
    pub merchant_id: String,
    pub program_id: String,
    /// The service's database, as the service's own user.
    pub db_url: String,
    server: std::process::Child,
}

impl Bench {
    /// Starts `passfold serve` (with `extra` environment) and makes the merchant `name` with
    /// a program "Club" (EUR, 1 point per unit).
    pub async fn start(name: &str, extra: &[(&str, &str)]) -> Bench {
        let dir = std::env::temp_dir().join(format!("passfold-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(BIN);
        cmd.arg("serve").stderr(Stdio::inherit());
        env(&mut cmd, &dir, port);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let server = cmd.spawn().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        while client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .map(|r| r.status() != 200)
            .unwrap_or(true)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut cmd = Command::new(BIN);
        cmd.args(["merchant", "create", "--name", name]);
        env(&mut cmd, &dir, port);
        let merchant: Value = serde_json::from_slice(&cmd.output().unwrap().stdout).unwrap();
        let admin = merchant["admin_key"].as_str().unwrap().to_string();
        let pos = merchant["pos_key"].as_str().unwrap().to_string();
        let program: Value = client
            .post(format!("{base}/api/v1/programs"))
            .bearer_auth(&admin)
            .json(&json!({"name": "Club", "template": "loyalty-default", "currency": "EUR", "points_per_unit": 1}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let data = dir.join("data");
        let pid_file = std::fs::read_to_string(data.join("postgres/data/postmaster.pid")).unwrap();
        let pg_port = pid_file.lines().nth(3).unwrap().trim().to_string();
        let password = std::fs::read_to_string(data.join("postgres.password")).unwrap();
        Bench {
            db_url: format!(
                "postgres://passfold:{}@127.0.0.1:{pg_port}/passfold",
                password.trim()
            ),
            dir,
            port,
            base,
            client,
            admin,
            pos,
            merchant_id: merchant["merchant_id"].as_str().unwrap().to_string(),
            program_id: program["id"].as_str().unwrap().to_string(),
            server,
        }
    }

    /// The server's process id (for its memory in /proc).
    pub fn server_pid(&self) -> u32 {
        self.server.id()
    }

    pub fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.db_url).unwrap()
    }

    /// A `passfold` command on the bench's data folder (e.g. `worker --once --at ...`).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        env(&mut cmd, &self.dir, self.port);
        cmd
    }

    /// `n` members of the program with their passes, straight into the service's database
    /// (names from the lists above, emails from a latin stem, unique phones and cards),
    /// then `VACUUM ANALYZE` as autovacuum would. Returns how long it took.
    pub fn insert_members(&self, conn: &mut PgConnection, n: i64) -> Duration {
        let started = Instant::now();
        conn.batch_execute(&format!(
            "INSERT INTO members (id, merchant_id, program_id, name, email, phone, card_number, referral_code)
               SELECT gen_random_uuid(), '{m}', '{p}',
                      f[1 + (hashint8(g) & 1023) % {nf}] || ' ' || l[1 + (hashint8(g + 1) & 1023) % {nl}],
                      'client' || g || '@mail' || (g % 10) || '.example',
                      '+7' || (9000000000 + g)::text,
                      (4000000000000000 + g * 7919)::text,
                      'S' || g
                 FROM generate_series(1::bigint, {n}) g, (SELECT ARRAY[{first}] AS f, ARRAY[{last}] AS l) names;
             INSERT INTO passes (id, merchant_id, serial_number, member_id, template_id, authentication_token, download_token)
               SELECT gen_random_uuid(), '{m}', 'bench' || card_number, id, 'loyalty-default',
                      md5(card_number || 'a'), md5(card_number || 'd')
                 FROM members WHERE program_id = '{p}';",
            m = self.merchant_id,
            p = self.program_id,
            nf = FIRST.len(),
            nl = LAST.len(),
            first = sql_list(FIRST),
            last = sql_list(LAST),
        ))
        .unwrap();
        // Apart: VACUUM cannot run in the batch's implicit transaction.
        conn.batch_execute("VACUUM ANALYZE members").unwrap();
        conn.batch_execute("VACUUM ANALYZE passes").unwrap();
        started.elapsed()
    }
}

fn env(cmd: &mut Command, dir: &std::path::Path, port: u16) {
    cmd.env_remove("DATABASE_URL")
        .env("PASSFOLD_DATA_DIR", dir.join("data"))
        .env("PASSFOLD_BIND", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn");
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.server.id().to_string())
            .status();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
