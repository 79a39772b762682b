//! The restart policy of one resource (WSFC's RestartAction, RestartThreshold, RestartPeriod,
//! RestartDelay and RetryPeriodOnFailure). Time is an argument: nothing here reads a clock.

use super::Time;
use crate::model::{Policy, UNSET};
use std::collections::VecDeque;
use std::time::Duration;

/// What the failure policy decided for one resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restart {
    /// Failures within the restart window, oldest first.
    failures: VecDeque<Time>,
    /// Not before this instant (RestartDelay, RetryPeriodOnFailure).
    pub wait_until: Option<Time>,
    /// Restarts exhausted and no retry left: waits for an operator.
    pub blocked: bool,
}

impl Restart {
    /// A failure at `now` while the resource should be online: restart after RestartDelay while
    /// the failures within RestartPeriod stay within RestartThreshold; then RestartAction decides:
    /// 0 never restarts, 1 stays failed, 2 fails the group over — which, on a node with nowhere to
    /// go, means waiting RetryPeriodOnFailure and trying again with a fresh window.
    ///
    /// Returns whether the group should fail over (restarts exhausted under RestartAction 2).
    pub fn on_failure(&mut self, policy: &Policy, now: Time) -> bool {
        if policy.restart_action == 0 {
            self.blocked = true;
            self.wait_until = None;
            return false;
        }
        let period = Duration::from_millis(policy.restart_period_ms.into());
        while self.failures.front().is_some_and(|t| now.saturating_sub(*t) > period) {
            self.failures.pop_front();
        }
        self.failures.push_back(now);
        if self.failures.len() <= policy.restart_threshold as usize {
            self.wait_until = Some(now + Duration::from_millis(policy.restart_delay_ms.into()));
            false
        } else if policy.restart_action == 2 && policy.retry_period_ms != UNSET {
            self.failures.clear();
            self.wait_until = Some(now + Duration::from_millis(policy.retry_period_ms.into()));
            true
        } else {
            self.blocked = true;
            self.wait_until = None;
            policy.restart_action == 2
        }
    }

    /// An operator's request starts afresh: it clears what the failure policy decided.
    pub fn clear(&mut self) {
        *self = Restart::default();
    }

    /// Whether a restart may be attempted at `now`.
    pub fn allows(&self, now: Time) -> bool {
        !self.blocked && self.wait_until.is_none_or(|t| t <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ResourceDoc, builtin_types};

    fn policy(common: &[(&str, &str)]) -> Policy {
        let doc = ResourceDoc {
            id: 1,
            name: "r".into(),
            group: "g".into(),
            type_name: "dummy".into(),
            common: common.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            private: Default::default(),
            dependencies: Default::default(),
        };
        doc.policy(&builtin_types()[0]).unwrap()
    }

    fn s(secs: u64) -> Time {
        Duration::from_secs(secs)
    }

    /// (failure at, expected wait_until, expected blocked) for each failure in turn.
    fn run(p: &Policy, steps: &[(u64, Option<u64>, bool)]) {
        let mut r = Restart::default();
        for (i, (at, wait, blocked)) in steps.iter().enumerate() {
            r.on_failure(p, s(*at));
            assert_eq!((r.wait_until, r.blocked), (wait.map(Duration::from_millis), *blocked), "failure #{i} at {at}s");
        }
    }

    #[test]
    fn threshold_within_the_period_then_retry() {
        let p = policy(&[
            ("RestartThreshold", "2"),
            ("RestartPeriod", "60000"),
            ("RestartDelay", "1000"),
            ("RetryPeriodOnFailure", "600000"),
        ]);
        run(
            &p,
            &[
                (10, Some(11_000), false),
                (20, Some(21_000), false),
                // The third failure within 60 s exceeds the threshold: wait the retry period.
                (30, Some(630_000), false),
                // The window starts afresh after the retry.
                (630, Some(631_000), false),
            ],
        );
    }

    #[test]
    fn failures_leave_the_window() {
        let p = policy(&[("RestartThreshold", "1"), ("RestartPeriod", "10000"), ("RestartDelay", "0")]);
        // 11 s apart: each failure is alone in its window, so each is restarted at once.
        run(&p, &[(0, Some(0), false), (11, Some(11_000), false), (22, Some(22_000), false)]);
        // 5 s apart: the second exceeds the threshold of 1; default retry is an hour.
        run(&p, &[(0, Some(0), false), (5, Some(3_605_000), false)]);
    }

    #[test]
    fn restart_actions() {
        run(&policy(&[("RestartAction", "0")]), &[(1, None, true)]);
        let p = policy(&[("RestartAction", "1"), ("RestartThreshold", "1"), ("RestartDelay", "500")]);
        run(&p, &[(1, Some(1_500), false), (2, None, true)]);
        let p = policy(&[("RestartAction", "2"), ("RestartThreshold", "0"), ("RetryPeriodOnFailure", "4294967295")]);
        run(&p, &[(1, None, true)]);
    }

    #[test]
    fn allows_and_clear() {
        let p = policy(&[("RestartDelay", "500")]);
        let mut r = Restart::default();
        assert!(r.allows(s(0)));
        r.on_failure(&p, s(1));
        assert!(!r.allows(Duration::from_millis(1_499)));
        assert!(r.allows(Duration::from_millis(1_500)));
        r.blocked = true;
        assert!(!r.allows(s(100)));
        r.clear();
        assert!(r.allows(s(0)));
    }
}
