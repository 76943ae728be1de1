//! How Herald sizes itself for where it runs: a long-lived `server`, or a `serverless`
//! platform (scale to zero, small instances billed per use), where large pools cost
//! memory and start-up time an instance may never use. `auto` (the default) looks for
//! the variables those platforms set. Settings given explicitly override the profile.

use std::fmt;
use std::time::Duration;

/// `WEBHOOK_PROFILE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ProfileSetting {
    /// `serverless` when a serverless platform's variable is set, else `server`.
    #[default]
    Auto,
    Server,
    Serverless,
}

/// The variables serverless platforms set: AWS Lambda, Azure Functions, Google Cloud
/// Functions, Cloud Run and Knative.
pub const PLATFORM_VARIABLES: [&str; 5] = [
    "AWS_LAMBDA_FUNCTION_NAME",
    "FUNCTION_APP",
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTION_NAME",
    "K_SERVICE",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Server,
    Serverless,
}

/// Why the profile was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `WEBHOOK_PROFILE` named it.
    Set,
    /// `auto` found this variable.
    Detected(&'static str),
    /// `auto` found no platform's variable.
    NoPlatform,
}

/// The chosen profile, why, and the sizes it gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    pub kind: Kind,
    pub reason: Reason,
    pub sizing: Sizing,
}

/// The sizes a profile gives: each is the default of a setting, or a size of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    /// Default of `WEBHOOK_MAX_WORKERS`.
    pub max_workers: u32,
    /// Idle HTTP connections kept per destination host (`None`: as many as were in use).
    pub idle_connections_per_host: Option<usize>,
    /// How long an idle HTTP connection is kept.
    pub idle_timeout: Duration,
    /// Reader connections of the embedded store, opened as reads need them.
    pub store_readers: usize,
    /// How long after start the periodic jobs (retention sweep, rollup pruning,
    /// resealing secrets) first run, so that a cold start serves before them.
    pub periodic_jobs_after: Duration,
}

impl Kind {
    pub fn sizing(self) -> Sizing {
        match self {
            Self::Server => Sizing {
                max_workers: 256,
                idle_connections_per_host: None,
                idle_timeout: Duration::from_secs(60),
                store_readers: 32,
                periodic_jobs_after: Duration::ZERO,
            },
            Self::Serverless => Sizing {
                max_workers: 32,
                idle_connections_per_host: Some(4),
                idle_timeout: Duration::from_secs(10),
                store_readers: 4,
                periodic_jobs_after: Duration::from_secs(10),
            },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Serverless => "serverless",
        }
    }
}

impl Profile {
    /// The profile `setting` chooses, with `variable` reading the environment.
    pub fn choose(setting: ProfileSetting, variable: impl Fn(&str) -> Option<String>) -> Self {
        let (kind, reason) = match setting {
            ProfileSetting::Server => (Kind::Server, Reason::Set),
            ProfileSetting::Serverless => (Kind::Serverless, Reason::Set),
            ProfileSetting::Auto => PLATFORM_VARIABLES
                .into_iter()
                .find(|name| variable(name).is_some_and(|v| !v.is_empty()))
                .map_or((Kind::Server, Reason::NoPlatform), |name| {
                    (Kind::Serverless, Reason::Detected(name))
                }),
        };
        Self {
            kind,
            reason,
            sizing: kind.sizing(),
        }
    }
}

/// One line for the log and the health report, e.g. `serverless (AWS_LAMBDA_FUNCTION_NAME
/// is set): 32 workers, 4 idle HTTP connections per host kept 10s, …`.
impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.reason {
            Reason::Set => "WEBHOOK_PROFILE".to_owned(),
            Reason::Detected(name) => format!("{name} is set"),
            Reason::NoPlatform => "no serverless platform detected".to_owned(),
        };
        let s = &self.sizing;
        let idle = s.idle_connections_per_host.map_or(
            "as many idle HTTP connections per host as were in use".to_owned(),
            |n| format!("{n} idle HTTP connections per host"),
        );
        let periodic = if s.periodic_jobs_after.is_zero() {
            "periodic jobs from the start".to_owned()
        } else {
            format!(
                "periodic jobs from {} after start",
                humantime::format_duration(s.periodic_jobs_after)
            )
        };
        write!(
            f,
            "{} ({why}): {} workers by default, {idle}, kept {}, {} embedded-store readers, {periodic}",
            self.kind.name(),
            s.max_workers,
            humantime::format_duration(s.idle_timeout),
            s.store_readers,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn auto_detects_each_platform() {
        for name in PLATFORM_VARIABLES {
            let profile = Profile::choose(ProfileSetting::Auto, with(&[(name, "orders")]));
            assert_eq!(profile.kind, Kind::Serverless, "{name}");
            assert_eq!(profile.reason, Reason::Detected(name));
            assert_eq!(profile.sizing, Kind::Serverless.sizing());
        }
        let plain = Profile::choose(ProfileSetting::Auto, with(&[("HOME", "/root")]));
        assert_eq!(
            (plain.kind, plain.reason),
            (Kind::Server, Reason::NoPlatform)
        );
        // Set but empty is not set.
        let empty = Profile::choose(ProfileSetting::Auto, with(&[("K_SERVICE", "")]));
        assert_eq!(empty.kind, Kind::Server);
    }

    #[test]
    fn a_named_profile_wins_over_detection() {
        let lambda = with(&[("AWS_LAMBDA_FUNCTION_NAME", "orders")]);
        let server = Profile::choose(ProfileSetting::Server, &lambda);
        assert_eq!((server.kind, server.reason), (Kind::Server, Reason::Set));
        let serverless = Profile::choose(ProfileSetting::Serverless, with(&[]));
        assert_eq!(serverless.kind, Kind::Serverless);
    }

    #[test]
    fn serverless_is_smaller_in_every_pool() {
        let (server, serverless) = (Kind::Server.sizing(), Kind::Serverless.sizing());
        assert!(serverless.max_workers < server.max_workers);
        assert!(serverless.store_readers < server.store_readers);
        assert!(serverless.idle_timeout < server.idle_timeout);
        assert!(serverless.idle_connections_per_host.is_some());
        let line = Profile::choose(ProfileSetting::Auto, with(&[("K_SERVICE", "x")])).to_string();
        assert_eq!(
            line,
            "serverless (K_SERVICE is set): 32 workers by default, 4 idle HTTP connections per host, kept 10s, 4 embedded-store readers, periodic jobs from 10s after start"
        );
        assert_eq!(
            Profile::choose(ProfileSetting::Server, with(&[])).to_string(),
            "server (WEBHOOK_PROFILE): 256 workers by default, as many idle HTTP connections per host as were in use, kept 1m, 32 embedded-store readers, periodic jobs from the start"
        );
    }
}
