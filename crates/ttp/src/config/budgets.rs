//! Budgets: how many evaluations a credential, an acting person, a
//! provider and a recipient may have, per minute and per day (UTC fixed
//! windows). The defaults are sized to real use: a clinician registers
//! tens of records a day with at most ten evaluations each.

use anyhow::bail;
use serde::{Deserialize, Serialize};

/// One budget: evaluations per UTC minute and per UTC day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Evaluations per minute (from :00 to :59 UTC).
    pub per_minute: u64,
    /// Evaluations per day (from 00:00 to 24:00 UTC).
    pub per_day: u64,
}

impl Limit {
    /// Checks that both numbers are positive and the minute fits in the day.
    pub fn validate(&self, what: &str) -> anyhow::Result<()> {
        if self.per_minute == 0 || self.per_day == 0 {
            bail!("{what}: per_minute and per_day must be positive");
        }
        if self.per_minute > self.per_day {
            bail!("{what}: per_minute must not be more than per_day");
        }
        Ok(())
    }
}

const fn limit(per_minute: u64, per_day: u64) -> Limit {
    Limit {
        per_minute,
        per_day,
    }
}

/// The default budgets of every dimension (`[budgets]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budgets {
    /// Per browser access token (counted on its `jti`): 60/min, 600/day.
    #[serde(default = "default_browser_token")]
    pub browser_token: Limit,
    /// Per acting person (provider + person id, over all their tokens):
    /// 120/min, 1 000/day.
    #[serde(default = "default_person")]
    pub person: Limit,
    /// Per provider, whoever evaluates for it: 20 000/min, 500 000/day.
    #[serde(default = "default_provider")]
    pub provider: Limit,
    /// Per recipient key domain: 100 000/min, 5 000 000/day.
    #[serde(default = "default_recipient")]
    pub recipient: Limit,
    /// Per back-end client (provider or processor, `client_credentials`,
    /// and development static tokens): 60 000/min, 2 000 000/day.
    #[serde(default = "default_client")]
    pub client: Limit,
    /// Per recipient client for `POST /v1/rekey` (each element counts):
    /// 600 000/min, 50 000 000/day.
    #[serde(default = "default_rekey")]
    pub rekey: Limit,
}

fn default_browser_token() -> Limit {
    limit(60, 600)
}
fn default_person() -> Limit {
    limit(120, 1_000)
}
fn default_provider() -> Limit {
    limit(20_000, 500_000)
}
fn default_recipient() -> Limit {
    limit(100_000, 5_000_000)
}
fn default_client() -> Limit {
    limit(60_000, 2_000_000)
}
fn default_rekey() -> Limit {
    limit(600_000, 50_000_000)
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            browser_token: default_browser_token(),
            person: default_person(),
            provider: default_provider(),
            recipient: default_recipient(),
            client: default_client(),
            rekey: default_rekey(),
        }
    }
}

impl Budgets {
    /// Checks every budget.
    pub fn validate(&self, what: &str) -> anyhow::Result<()> {
        for (name, l) in [
            ("browser_token", self.browser_token),
            ("person", self.person),
            ("provider", self.provider),
            ("recipient", self.recipient),
            ("client", self.client),
            ("rekey", self.rekey),
        ] {
            l.validate(&format!("{what}.{name}"))?;
        }
        Ok(())
    }
}

/// A caller's own budgets, each replacing the global one for its requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerBudgets {
    /// Per browser token of this caller's clinicians.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser_token: Option<Limit>,
    /// Per acting person of this caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<Limit>,
    /// This caller's back-end credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<Limit>,
    /// This recipient caller's re-keying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rekey: Option<Limit>,
}

impl CallerBudgets {
    /// The global budgets with this caller's own in their place.
    pub fn over(&self, global: &Budgets) -> Budgets {
        Budgets {
            browser_token: self.browser_token.unwrap_or(global.browser_token),
            person: self.person.unwrap_or(global.person),
            client: self.client.unwrap_or(global.client),
            rekey: self.rekey.unwrap_or(global.rekey),
            ..*global
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let b: Budgets = toml::from_str("").unwrap();
        assert_eq!(b, Budgets::default());
        assert_eq!(b.browser_token, limit(60, 600));
        b.validate("budgets").unwrap();
        let own = CallerBudgets {
            client: Some(limit(5, 50)),
            ..CallerBudgets::default()
        };
        let merged = own.over(&b);
        assert_eq!(merged.client, limit(5, 50));
        assert_eq!(merged.person, b.person);
        assert!(limit(0, 1).validate("x").is_err());
        assert!(limit(2, 1).validate("x").is_err());
    }
}
