//! How many subscribe requests each client address may make: a window of an hour per
//! address, in a table of bounded size (a flood from many addresses cannot grow it).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(3600);

pub(super) struct Clients {
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    per_window: u32,
    max: usize,
}

impl Clients {
    pub(super) fn new(per_hour: u32, max: usize) -> Clients {
        Clients {
            seen: Mutex::new(HashMap::new()),
            per_window: per_hour,
            max,
        }
    }

    /// Count a request from `ip`; `false` when it is over the limit, or when the table is
    /// full of clients still within their hour (a new client waits for room).
    pub(super) fn allow(&self, ip: IpAddr) -> bool {
        self.allow_at(ip, Instant::now())
    }

    fn allow_at(&self, ip: IpAddr, now: Instant) -> bool {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() >= self.max && !seen.contains_key(&ip) {
            seen.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if seen.len() >= self.max {
                return false;
            }
        }
        let (start, count) = seen.entry(ip).or_insert((now, 0));
        if now.duration_since(*start) >= WINDOW {
            (*start, *count) = (now, 0);
        }
        *count += 1;
        *count <= self.per_window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_quota_per_hour_and_the_table_stays_bounded() {
        let clients = Clients::new(2, 16);
        let t0 = Instant::now();
        let a: IpAddr = [192, 0, 2, 1].into();
        assert!(clients.allow_at(a, t0));
        assert!(clients.allow_at(a, t0));
        assert!(!clients.allow_at(a, t0), "third in the hour");
        assert!(clients.allow_at(a, t0 + WINDOW), "a new hour");
        for i in 0..15u8 {
            assert!(clients.allow_at([198, 51, 100, i].into(), t0 + WINDOW));
        }
        assert!(
            !clients.allow_at([203, 0, 113, 1].into(), t0 + WINDOW),
            "full"
        );
        assert!(
            clients.allow_at([203, 0, 113, 1].into(), t0 + WINDOW * 3),
            "room again"
        );
        assert!(clients.seen.lock().unwrap().len() <= 16);
    }
}
