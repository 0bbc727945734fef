//! The outbox loop's claims (`passfold_claim`), straight against PostgreSQL: a claim is a
//! committed lease; rows leased by a live process are not claimed again until the lease
//! runs out; and on a channel that sends what a pass shows (Google), a pass another
//! process is sending is left alone, even its newer rows, so states land in order.

use crate::helpers::TestDatabase;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Double, Text, Uuid as SqlUuid};
use uuid::Uuid;

#[derive(QueryableByName, Debug)]
struct Claimed {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = SqlUuid)]
    pass_id: Uuid,
}

fn enqueue(conn: &mut PgConnection, pass: Uuid, channel: &str, reason: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    diesel::sql_query(
        "INSERT INTO outbox (merchant_id, pass_id, reason, channel) \
         VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind::<SqlUuid, _>(Uuid::nil())
    .bind::<SqlUuid, _>(pass)
    .bind::<Text, _>(reason)
    .bind::<Text, _>(channel)
    .get_result::<Id>(conn)
    .expect("insert an outbox row")
    .id
}

fn claim(conn: &mut PgConnection, channel: &str, lease: f64, per_pass: bool) -> Vec<Claimed> {
    let mut rows: Vec<Claimed> =
        diesel::sql_query("SELECT id, pass_id FROM passfold_claim($1, 100, $2, $3)")
            .bind::<Text, _>(channel)
            .bind::<Double, _>(lease)
            .bind::<Bool, _>(per_pass)
            .load(conn)
            .expect("claim");
    rows.sort_by_key(|r| r.id);
    rows
}

#[test]
fn claims_are_leases_and_one_process_sends_a_pass_at_a_time() {
    let db = TestDatabase::create();
    let (mut a, mut b) = (db.connect(), db.connect());
    let (p, q) = (Uuid::new_v4(), Uuid::new_v4());

    // Apple: every available row, once, while its lease lasts.
    let apple = [
        enqueue(&mut a, p, "apple", "redeem"),
        enqueue(&mut a, p, "apple", "load"),
    ];
    let first = claim(&mut a, "apple", 1.0, false);
    assert_eq!(first.iter().map(|c| c.id).collect::<Vec<_>>(), apple);
    assert!(
        claim(&mut b, "apple", 1.0, false).is_empty(),
        "leased rows claimed twice"
    );
    // The claimer died without settling: after the lease another process takes them.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(claim(&mut b, "apple", 30.0, false).len(), 2);

    // Google: a pass being sent keeps its newer rows from other processes.
    let g1 = enqueue(&mut a, p, "google", "redeem");
    let taken = claim(&mut a, "google", 1.0, true);
    assert_eq!(taken.iter().map(|c| c.id).collect::<Vec<_>>(), vec![g1]);
    let g2 = enqueue(&mut a, p, "google", "load");
    let g3 = enqueue(&mut a, q, "google", "load");
    let other = claim(&mut b, "google", 30.0, true);
    assert_eq!(
        other.iter().map(|c| (c.id, c.pass_id)).collect::<Vec<_>>(),
        vec![(g3, q)],
        "a pass another process is sending was claimed"
    );
    // Settled (rows deleted) or lease run out: the pass's newer row is free again, with a
    // row still waiting for a retry coalesced into the same claim.
    let retry_later: i64 = {
        let id = enqueue(&mut a, p, "google", "message");
        diesel::sql_query(
            "UPDATE outbox SET available_at = now() + interval '1 hour' WHERE id = $1",
        )
        .bind::<BigInt, _>(id)
        .execute(&mut a)
        .expect("delay the row");
        id
    };
    diesel::sql_query("DELETE FROM outbox WHERE id = $1")
        .bind::<BigInt, _>(g1)
        .execute(&mut a)
        .expect("settle");
    let next = claim(&mut b, "google", 30.0, true);
    assert_eq!(
        next.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![g2, retry_later]
    );
    assert!(next.iter().all(|c| c.pass_id == p));

    // Two claims racing over many passes never take one pass twice.
    let passes: Vec<Uuid> = (0..200).map(|_| Uuid::new_v4()).collect();
    for pass in &passes {
        enqueue(&mut a, *pass, "google", "template");
    }
    let url = db.url.clone();
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut conn = PgConnection::establish(&url).expect("connect");
                let mut got = Vec::new();
                loop {
                    let rows: Vec<Claimed> = diesel::sql_query(
                        "SELECT id, pass_id FROM passfold_claim('google', 7, 30, true)",
                    )
                    .load(&mut conn)
                    .expect("claim");
                    if rows.is_empty() {
                        break got;
                    }
                    got.extend(rows.into_iter().map(|r| r.pass_id));
                }
            })
        })
        .collect();
    let mut all: Vec<Uuid> = racers
        .into_iter()
        .flat_map(|r| r.join().expect("racer"))
        .collect();
    all.sort();
    let n = all.len();
    all.dedup();
    assert_eq!(n, all.len(), "a pass was claimed by two processes");
    assert_eq!(n, passes.len());
}
