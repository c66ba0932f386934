//! The load configuration file (`logctl load --config logctl.toml`): the options a
//! cron line would otherwise repeat. Flags on the command line win over the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Everything `[load]`-related a file may set; unknown keys are an error, so a typo
/// does not silently load with the wrong options.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadConfig {
    pub shape: Option<String>,
    pub timezone: Option<String>,
    pub default_service: Option<String>,
    pub rejects: Option<PathBuf>,
    pub max_errors: Option<u64>,
    pub max_line_bytes: Option<String>,
    pub batch_bytes: Option<String>,
    pub jobs: Option<usize>,
    pub strip_nul: Option<bool>,
    pub index_strategy: Option<crate::ingest::writer::IndexStrategy>,
    /// Column name to `path[:unit]`, as `--map` takes them.
    #[serde(default)]
    pub map: BTreeMap<String, String>,
}

impl LoadConfig {
    pub fn read(path: &Path) -> Result<LoadConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))
    }

    /// The mappings in `--map` form (`column=path[:unit]`).
    pub fn mappings(&self) -> Vec<String> {
        self.map
            .iter()
            .map(|(column, path)| format!("{column}={path}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_options_and_mappings_and_refuses_unknown_keys() {
        let config: LoadConfig = toml::from_str(
            "shape = \"ecs\"\ntimezone = \"Europe/Berlin\"\n[map]\nlatency_ms = \"timings.total:s\"\n",
        )
        .unwrap();
        assert_eq!(config.shape.as_deref(), Some("ecs"));
        assert_eq!(config.mappings(), ["latency_ms=timings.total:s"]);
        assert!(toml::from_str::<LoadConfig>("shapes = \"ecs\"\n").is_err());
    }
}
