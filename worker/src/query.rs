//! Query parameters, read strictly: a parameter a path does not take, one
//! given twice, or a flag that is neither yes nor no is refused (400)
//! rather than ignored, so that a misspelt `?dry-run=1` never sends.

use worker::Request;

use crate::error::RelayError;

/// The longest parameter name an error repeats.
const MAX_NAME_SHOWN: usize = 64;

/// A request's query parameters, each known to its path and given once.
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// The parameters of `req`, each one of `allowed`.
    pub fn of(req: &Request, allowed: &'static [&'static str]) -> Result<Query, RelayError> {
        let url = req.url()?;
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, value) in url.query_pairs() {
            let Some(known) = allowed.iter().find(|a| **a == name) else {
                return Err(RelayError::UnknownQuery {
                    name: name.chars().take(MAX_NAME_SHOWN).collect(),
                    allowed,
                });
            };
            if pairs.iter().any(|(n, _)| n == known) {
                return Err(RelayError::BadQuery {
                    parameter: known,
                    problem: "is given more than once",
                });
            }
            pairs.push((name.into_owned(), value.into_owned()));
        }
        Ok(Query { pairs })
    }

    /// Flag `name`: `None` when absent; `1`, `true` or empty (`?name`) is
    /// yes, `0` or `false` no, anything else refused naming it.
    pub fn flag(&self, name: &'static str) -> Result<Option<bool>, RelayError> {
        match self.get(name) {
            None => Ok(None),
            Some("" | "1" | "true") => Ok(Some(true)),
            Some("0" | "false") => Ok(Some(false)),
            Some(_) => Err(RelayError::BadQuery {
                parameter: name,
                problem: "must be 1, true, 0 or false",
            }),
        }
    }

    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}
