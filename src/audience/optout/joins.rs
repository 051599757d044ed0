//! Joining the list (double opt-in): a request from the subscribe form waits here,
//! unconfirmed, until the reader follows the link mailed to them; a confirmed join is kept
//! as the consent record and written into the subscribers file like a request to leave.
//! Nothing about an unconfirmed request reaches the list.

use rusqlite::{params, OptionalExtension};

use super::Optouts;
use crate::audience::subscribers::Choices;
use crate::error::Result;

/// How long a confirmation link works.
pub(crate) const CONFIRM_DAYS: i64 = 7;
/// One confirmation mail per address per this many hours, whatever the form receives.
const MAIL_EVERY_HOURS: i64 = 24;
/// The source a complaint (an abuse report read by `inbox`) is recorded with: such an
/// address is never subscribed again from the web, only by the blogger.
pub(crate) const COMPLAINT_SOURCE: &str = "inbox: abuse report";

/// Version 5 of the store: pending requests, the mail throttle, confirmed joins.
pub(super) fn create_tables(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE pending_joins (
            id TEXT PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            email TEXT NOT NULL,
            prefs TEXT NOT NULL,
            form TEXT NOT NULL,
            ip TEXT,
            asked_at TEXT NOT NULL
        );
        CREATE TABLE join_mails (key TEXT PRIMARY KEY, at TEXT NOT NULL);
        CREATE TABLE joins (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL,
            email TEXT NOT NULL,
            prefs TEXT NOT NULL,
            form TEXT NOT NULL,
            ip TEXT,
            asked_at TEXT NOT NULL,
            confirmed_at TEXT NOT NULL,
            applied_at TEXT
        );
        CREATE INDEX joins_key ON joins (key);
        CREATE TABLE choices (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL,
            choices TEXT NOT NULL,
            at TEXT NOT NULL,
            applied_at TEXT
        );
        CREATE INDEX choices_pending ON choices (applied_at) WHERE applied_at IS NULL;
        -- What readers did on the web, counted per week by `status` (no address).
        CREATE TABLE reader_events (
            at TEXT NOT NULL,
            class TEXT NOT NULL CHECK (class IN ('join', 'confirm', 'change'))
        );
        CREATE INDEX joins_pending ON joins (applied_at) WHERE applied_at IS NULL;",
    )
}

/// What a reader asked for on the form.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Prefs {
    pub name: Option<String>,
    /// Empty: every category.
    pub categories: Vec<String>,
    pub format: Option<String>,
    pub language: Option<String>,
}

/// A request to join, as the form sent it.
#[derive(Debug, Clone)]
pub(crate) struct JoinRequest {
    pub key: String,
    pub email: String,
    pub prefs: Prefs,
    /// The page the form was on (its Origin or Referer), or "web".
    pub form: String,
    pub ip: Option<String>,
}

/// What became of a request to join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Asked {
    /// Recorded: mail the confirmation link for this pending id.
    Mail { id: String },
    /// Recorded (or not, for a complaint), but no mail now: one was sent in the last 24
    /// hours, or the address complained.
    Quiet,
    /// Too many confirmations wait already.
    Full,
}

/// A confirmed join (the consent record).
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Join {
    #[serde(skip)]
    pub id: i64,
    pub key: String,
    pub email: String,
    pub prefs: Prefs,
    pub form: String,
    pub ip: Option<String>,
    pub asked_at: String,
    pub confirmed_at: String,
}

/// The source written out, so that the small index of complaints answers (SQLite
/// takes a partial index only where the query names its condition).
pub(super) fn complained_sql() -> String {
    format!("SELECT 1 FROM optouts WHERE key = ?1 AND source = '{COMPLAINT_SOURCE}' LIMIT 1")
}

impl Optouts {
    /// Did `key` complain about our mail (an abuse report)?
    pub(crate) fn complained(&self, key: &str) -> Result<bool> {
        self.conn
            .query_row(&complained_sql(), [key], |_| Ok(()))
            .optional()
            .map(|found| found.is_some())
            .map_err(|e| self.db(e))
    }

    /// Record a request to join (one per address: a new one replaces the last), in one
    /// transaction with the decision to mail.
    pub(crate) fn ask_to_join(&self, request: &JoinRequest, max_pending: usize) -> Result<Asked> {
        self.immediately(|| self.ask_to_join_in_tx(request, max_pending))
    }

    /// Run `f` in a transaction that takes the write lock first (`BEGIN IMMEDIATE`): two
    /// requests at once then wait their turn (the busy timeout) instead of failing.
    fn immediately<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let _turn = super::write_turn();
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.db(e))?;
        match f() {
            Ok(value) => {
                self.conn.execute_batch("COMMIT").map_err(|e| self.db(e))?;
                Ok(value)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn ask_to_join_in_tx(&self, request: &JoinRequest, max_pending: usize) -> Result<Asked> {
        let now = self.clock.now();
        let expired = (now - chrono::Duration::days(CONFIRM_DAYS)).to_rfc3339();
        let recent = (now - chrono::Duration::hours(MAIL_EVERY_HOURS)).to_rfc3339();
        let run = |sql: &str, p: &[&dyn rusqlite::ToSql]| {
            self.conn.execute(sql, p).map_err(|e| self.db(e))
        };
        run("DELETE FROM pending_joins WHERE asked_at < ?1", &[&expired])?;
        run("DELETE FROM join_mails WHERE at < ?1", &[&recent])?;
        if self.complained(&request.key)? {
            return Ok(Asked::Quiet);
        }
        let existing: Option<String> = self
            .conn
            .query_row(
                "SELECT id FROM pending_joins WHERE key = ?1",
                [&request.key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db(e))?;
        let waiting: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM pending_joins", [], |r| r.get(0))
            .map_err(|e| self.db(e))?;
        if existing.is_none() && waiting as usize >= max_pending {
            return Ok(Asked::Full);
        }
        let id = existing.unwrap_or_else(new_id);
        let prefs = serde_json::to_string(&request.prefs).unwrap_or_default();
        run(
            "INSERT OR REPLACE INTO pending_joins (id, key, email, prefs, form, ip, asked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            &[
                &id,
                &request.key,
                &request.email,
                &prefs,
                &request.form,
                &request.ip,
                &now.to_rfc3339(),
            ],
        )?;
        let mailed = run(
            "INSERT OR IGNORE INTO join_mails (key, at) VALUES (?1, ?2)",
            &[&request.key, &now.to_rfc3339()],
        )? == 1;
        // Counted per week by `status` (no address).
        self.note_activity("join")?;
        Ok(if mailed {
            Asked::Mail { id }
        } else {
            Asked::Quiet
        })
    }

    /// The address a pending request is for, if it is still waiting (not expired).
    pub(crate) fn pending_join(&self, id: &str) -> Result<Option<String>> {
        let expired = (self.clock.now() - chrono::Duration::days(CONFIRM_DAYS)).to_rfc3339();
        self.conn
            .query_row(
                "SELECT email FROM pending_joins WHERE id = ?1 AND asked_at >= ?2",
                params![id, expired],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db(e))
    }

    /// Confirm the pending request `id`: it becomes a join (the consent record), to be
    /// written into the list. `None`: no such request waits (expired, already confirmed).
    pub(crate) fn confirm_join(&self, id: &str) -> Result<Option<String>> {
        let Some(email) = self.pending_join(id)? else {
            return Ok(None);
        };
        let now = self.clock.now().to_rfc3339();
        let moved = self.immediately(|| {
            let db = |e| self.db(e);
            let moved = self
                .conn
                .execute(
                    "INSERT INTO joins (key, email, prefs, form, ip, asked_at, confirmed_at)
                     SELECT key, email, prefs, form, ip, asked_at, ?2 FROM pending_joins WHERE id = ?1",
                    params![id, now],
                )
                .map_err(db)?;
            self.conn
                .execute("DELETE FROM pending_joins WHERE id = ?1", [id])
                .map_err(db)?;
            if moved == 1 {
                self.note_activity("confirm")?;
            }
            Ok(moved)
        })?;
        // Another request may have confirmed it in between.
        Ok((moved == 1).then_some(email))
    }

    /// Confirmed joins not yet written into the list, oldest first.
    pub(crate) fn unapplied_joins(&self) -> Result<Vec<Join>> {
        self.joins_where("applied_at IS NULL", "")
    }

    /// Every join of `key`: what was consented to, when.
    pub(crate) fn joins_of(&self, key: &str) -> Result<Vec<Join>> {
        self.joins_where("key = ?1", key)
    }

    fn joins_where(&self, filter: &str, key: &str) -> Result<Vec<Join>> {
        let sql = format!(
            "SELECT id, key, email, prefs, form, ip, asked_at, confirmed_at FROM joins
             WHERE {filter} ORDER BY id"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.db(e))?;
        let bind: Vec<&dyn rusqlite::ToSql> = if filter.contains("?1") {
            vec![&key]
        } else {
            Vec::new()
        };
        let rows = stmt
            .query_map(bind.as_slice(), |r| {
                let prefs: String = r.get(3)?;
                Ok(Join {
                    id: r.get(0)?,
                    key: r.get(1)?,
                    email: r.get(2)?,
                    prefs: serde_json::from_str(&prefs).unwrap_or(Prefs {
                        name: None,
                        categories: Vec::new(),
                        format: None,
                        language: None,
                    }),
                    form: r.get(4)?,
                    ip: r.get(5)?,
                    asked_at: r.get(6)?,
                    confirmed_at: r.get(7)?,
                })
            })
            .map_err(|e| self.db(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.db(e))
    }

    pub(crate) fn mark_joins_applied(&self, ids: &[i64]) -> Result<()> {
        self.mark_applied_in("joins", ids)
    }

    /// Note that rows `ids` of `table` are written into the list.
    fn mark_applied_in(&self, table: &str, ids: &[i64]) -> Result<()> {
        let now = self.clock.now().to_rfc3339();
        let sql = format!("UPDATE {table} SET applied_at = ?2 WHERE id = ?1");
        for id in ids {
            self.conn
                .execute(&sql, params![id, now])
                .map_err(|e| self.db(e))?;
        }
        Ok(())
    }

    /// Requests waiting for their confirmation (for `subscribers list --pending`).
    pub(crate) fn pending_joins(&self) -> Result<Vec<(String, String)>> {
        let expired = (self.clock.now() - chrono::Duration::days(CONFIRM_DAYS)).to_rfc3339();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT email, asked_at FROM pending_joins WHERE asked_at >= ?1 ORDER BY asked_at",
            )
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map([expired], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.db(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.db(e))
    }
}

impl Optouts {
    fn note_activity(&self, class: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO reader_events (at, class) VALUES (?1, ?2)",
                params![self.clock.now().to_rfc3339(), class],
            )
            .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// Record a reader's choices from the preferences page; committed when this returns.
    pub(crate) fn record_choices(&self, key: &str, choices: &Choices) -> Result<()> {
        let text = serde_json::to_string(choices).unwrap_or_default();
        self.conn
            .execute(
                "INSERT INTO choices (key, choices, at) VALUES (?1, ?2, ?3)",
                params![key, text, self.clock.now().to_rfc3339()],
            )
            .map_err(|e| self.db(e))?;
        self.note_activity("change")?;
        Ok(())
    }

    /// Choices not yet written into the list, oldest first: (id, key, choices).
    pub(crate) fn unapplied_choices(&self) -> Result<Vec<(i64, String, Choices)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, key, choices FROM choices WHERE applied_at IS NULL ORDER BY id")
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| self.db(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, key, text) = row.map_err(|e| self.db(e))?;
            if let Ok(choices) = serde_json::from_str(&text) {
                out.push((id, key, choices));
            }
        }
        Ok(out)
    }

    /// The reader `key`'s latest choices not yet written into the list.
    pub(crate) fn waiting_choices(&self, key: &str) -> Result<Option<Choices>> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT choices FROM choices WHERE key = ?1 AND applied_at IS NULL ORDER BY id DESC LIMIT 1",
                [key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db(e))?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    pub(crate) fn mark_choices_applied(&self, ids: &[i64]) -> Result<()> {
        self.mark_applied_in("choices", ids)
    }
}

/// A new pending request's id: 128 random bits, in hex.
fn new_id() -> String {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 16];
    // The system's random source does not fail on Linux; a zero id would still be unique
    // enough for the one request it names only if this never happens, so it is loud.
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source");
    crate::text::hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;

    fn request(email: &str) -> JoinRequest {
        JoinRequest {
            key: email.to_string(),
            email: email.to_string(),
            prefs: Prefs {
                name: None,
                categories: Vec::new(),
                format: None,
                language: None,
            },
            form: "https://blog.example.org/".into(),
            ip: None,
        }
    }

    #[test]
    fn one_mail_a_day_per_address_a_bounded_queue_and_confirmation_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Optouts::open(dir.path(), Clock::system()).unwrap();
        let Asked::Mail { id } = store.ask_to_join(&request("a@example.org"), 2).unwrap() else {
            panic!("the first request is mailed");
        };
        assert_eq!(
            store.ask_to_join(&request("a@example.org"), 2).unwrap(),
            Asked::Quiet
        );
        assert!(matches!(
            store.ask_to_join(&request("b@example.org"), 2).unwrap(),
            Asked::Mail { .. }
        ));
        assert_eq!(
            store.ask_to_join(&request("c@example.org"), 2).unwrap(),
            Asked::Full
        );
        assert_eq!(store.pending_joins().unwrap().len(), 2);
        assert_eq!(
            store.confirm_join(&id).unwrap().as_deref(),
            Some("a@example.org")
        );
        assert_eq!(store.confirm_join(&id).unwrap(), None, "used up");
        assert_eq!(store.unapplied_joins().unwrap().len(), 1);
        assert_eq!(
            store.joins_of("a@example.org").unwrap()[0].form,
            "https://blog.example.org/"
        );
    }
}

#[cfg(test)]
mod concurrent {
    use super::*;
    use crate::clock::Clock;

    #[test]
    fn a_new_store_opened_by_four_threads_at_once_is_migrated_once_and_takes_every_request() {
        // Before: two first opens raced to create the tables ("already exists"), and the
        // endpoint answered 500.
        let dir = tempfile::tempdir().unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let path = dir.path();
                s.spawn(move || {
                    for i in 0..10 {
                        let store = Optouts::open(path, Clock::system()).unwrap();
                        let email = format!("a{t}-{i}@example.org");
                        let request = JoinRequest {
                            key: email.clone(),
                            email,
                            prefs: Prefs {
                                name: None,
                                categories: Vec::new(),
                                format: None,
                                language: None,
                            },
                            form: "web".into(),
                            ip: None,
                        };
                        store.ask_to_join(&request, 1000).unwrap();
                    }
                });
            }
        });
        let store = Optouts::open(dir.path(), Clock::system()).unwrap();
        assert_eq!(store.pending_joins().unwrap().len(), 40);
    }
}
