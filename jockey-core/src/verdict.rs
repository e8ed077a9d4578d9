//! The outcome of validating one object: denials (each naming field, problem, rule and fix) and
//! warnings.

/// The outcome of validating one object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verdict {
    pub denials: Vec<Denial>,
    pub warnings: Vec<String>,
    /// Services of the request's namespace the decision needs and the webhook's cache does not
    /// hold: the webhook reads them from the API server and decides again.
    pub services_needed: Vec<String>,
}

/// One broken rule: the field, what is wrong, the rule and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub field: String,
    pub problem: String,
    pub rule: String,
    pub fix: String,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        self.denials.is_empty()
    }

    /// The message returned to the user: every denial, each naming field, rule and fix.
    pub fn message(&self, object: &str) -> Option<String> {
        if self.denials.is_empty() {
            return None;
        }
        let lines: Vec<String> = self
            .denials
            .iter()
            .map(|d| {
                format!(
                    "{}: {} (rule: {}); fix: {}",
                    d.field, d.problem, d.rule, d.fix
                )
            })
            .collect();
        Some(format!(
            "{object} denied by jockey policy: {}",
            lines.join("; and ")
        ))
    }

    pub(crate) fn deny(
        &mut self,
        field: impl Into<String>,
        problem: String,
        rule: &str,
        fix: String,
    ) {
        self.denials.push(Denial {
            field: field.into(),
            problem,
            rule: rule.to_string(),
            fix,
        });
    }

    pub(crate) fn warn(&mut self, w: String) {
        self.warnings.push(w);
    }

    pub(crate) fn need_service(&mut self, name: &str) {
        if !self.services_needed.iter().any(|n| n == name) {
            self.services_needed.push(name.to_string());
        }
    }
}
