//! Tokens the target issued and when: proof-of-work challenges, and the starts of login flows.

use std::collections::{HashMap, VecDeque};

use crate::clock::Timestamp;

/// A bounded map of issued tokens to their issue time. When full, the
/// oldest token is forgotten, so a flood of requests for tokens cannot
/// grow it or lock honest clients out.
#[derive(Debug)]
pub(crate) struct IssuedTokens {
    issued: HashMap<String, Timestamp>,
    order: VecDeque<String>,
    max: usize,
    total: u64,
    taken: u64,
}

impl IssuedTokens {
    /// An empty map holding at most `max` tokens.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            issued: HashMap::new(),
            order: VecDeque::new(),
            max: max.max(1),
            total: 0,
            taken: 0,
        }
    }

    /// Remembers `token`, issued at `now`.
    pub(crate) fn issue(&mut self, token: &str, now: Timestamp) {
        while self.order.len() >= self.max {
            if let Some(old) = self.order.pop_front() {
                self.issued.remove(&old);
            }
        }
        self.order.push_back(token.to_owned());
        self.issued.insert(token.to_owned(), now);
        self.total += 1;
    }

    /// When `token` was issued, forgetting it: each token is taken once.
    pub(crate) fn take(&mut self, token: &str) -> Option<Timestamp> {
        let at = self.issued.remove(token)?;
        self.taken += 1;
        Some(at)
    }

    /// Forgets the tokens whose issue time fails `keep`; they count as
    /// never taken.
    pub(crate) fn retain(&mut self, keep: impl Fn(Timestamp) -> bool) {
        self.issued.retain(|_, t| keep(*t));
        let issued = &self.issued;
        self.order.retain(|c| issued.contains_key(c));
    }

    /// Tokens issued and never taken (forgotten ones included).
    pub(crate) fn untaken(&self) -> u64 {
        self.total - self.taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_taken_once_and_the_oldest_is_forgotten_first() {
        let t = Timestamp::from_millis;
        let mut tokens = IssuedTokens::new(2);
        tokens.issue("a", t(1));
        tokens.issue("b", t(2));
        tokens.issue("c", t(3));
        assert_eq!(tokens.take("a"), None, "forgotten when full");
        assert_eq!(tokens.take("b"), Some(t(2)));
        assert_eq!(tokens.take("b"), None, "taken once");
        assert_eq!(tokens.untaken(), 2);
    }
}
