//! Building results step by step.

use crate::{CheckStep, Facts, FailureClass, HealthResult, HealthStatus, TestResult};

/// Collects the named steps of a test and turns them into a result.
#[derive(Debug, Default)]
pub struct Report {
    steps: Vec<CheckStep>,
    /// Facts to report with the result.
    pub facts: Facts,
}

impl Default for Facts {
    fn default() -> Self {
        Facts {
            provider_version: None,
            credential_expires_at: None,
            rate_limit_remaining: None,
        }
    }
}

impl Report {
    /// An empty report.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a passed step.
    pub fn pass(&mut self, name: &str, message: impl Into<String>) {
        self.steps.push(CheckStep {
            name: name.into(),
            passed: true,
            message: message.into(),
        });
    }

    /// Records a failed step and returns the failed test result.
    pub fn fail(mut self, class: FailureClass, name: &str, message: impl Into<String>) -> TestResult {
        let message = message.into();
        self.steps.push(CheckStep {
            name: name.into(),
            passed: false,
            message: message.clone(),
        });
        TestResult {
            success: false,
            message,
            failure: Some(class),
            steps: self.steps,
            facts: self.facts,
        }
    }

    /// The successful test result.
    pub fn success(self, message: impl Into<String>) -> TestResult {
        TestResult {
            success: true,
            message: message.into(),
            failure: None,
            steps: self.steps,
            facts: self.facts,
        }
    }

    /// A health result with the steps so far.
    pub fn health(self, status: HealthStatus, failure: Option<FailureClass>, message: impl Into<String>) -> HealthResult {
        HealthResult {
            status,
            message: message.into(),
            failure,
            steps: self.steps,
            facts: self.facts,
        }
    }
}
