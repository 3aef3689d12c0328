//! Where callers and targets are, for preferring nearby targets.
//!
//! A caller's location is what the runtime says about the request (on
//! Workers `request.cf.continent`, `country` and `colo`); reading it costs,
//! so the gateway asks for it only when the service has targets that say
//! where they are. A target may name its continent and its country; a
//! caller is sent to healthy targets in its country if there are any, else
//! in its continent, else to any healthy target.
//!
//! Codes are Cloudflare's: continents `AF`, `AN`, `AS`, `EU`, `NA`, `OC`,
//! `SA`; countries ISO 3166-1 alpha-2 (`DE`, `US`).

/// Continent codes as `request.cf.continent` reports them.
pub const CONTINENTS: [&str; 7] = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"];

/// Where a caller is, as far as the runtime knows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Location {
    pub continent: Option<String>,
    pub country: Option<String>,
    /// The data centre serving the request.
    pub colo: Option<String>,
}

/// Where a target is, as its config says: upper-case codes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Place {
    pub continent: Option<[u8; 2]>,
    pub country: Option<[u8; 2]>,
}

/// How near a target is to a caller; the order is the preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Nearness {
    Elsewhere,
    SameContinent,
    SameCountry,
}

impl Place {
    /// Whether the config says anything about where it is.
    pub fn is_known(&self) -> bool {
        self.continent.is_some() || self.country.is_some()
    }

    pub fn nearness(&self, caller: &Location) -> Nearness {
        let same = |code: Option<[u8; 2]>, theirs: Option<&String>| match (code, theirs) {
            (Some(code), Some(theirs)) => theirs.as_bytes().eq_ignore_ascii_case(&code),
            _ => false,
        };
        if same(self.country, caller.country.as_ref()) {
            Nearness::SameCountry
        } else if same(self.continent, caller.continent.as_ref()) {
            Nearness::SameContinent
        } else {
            Nearness::Elsewhere
        }
    }
}

/// A two-letter code, upper-cased, if `text` is one.
pub fn code(text: &str) -> Option<[u8; 2]> {
    match text.as_bytes() {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()])
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(continent: &str, country: &str) -> Location {
        Location {
            continent: Some(continent.to_owned()),
            country: Some(country.to_owned()),
            colo: None,
        }
    }

    #[test]
    fn a_country_beats_a_continent_beats_elsewhere() {
        let berlin = Place {
            continent: code("EU"),
            country: code("DE"),
        };
        let europe = Place {
            continent: code("EU"),
            country: None,
        };
        assert_eq!(berlin.nearness(&caller("EU", "DE")), Nearness::SameCountry);
        assert_eq!(
            berlin.nearness(&caller("EU", "FR")),
            Nearness::SameContinent
        );
        assert_eq!(
            europe.nearness(&caller("EU", "de")),
            Nearness::SameContinent
        );
        assert_eq!(berlin.nearness(&caller("NA", "US")), Nearness::Elsewhere);
        assert_eq!(
            berlin.nearness(&Location::default()),
            Nearness::Elsewhere,
            "an unknown caller is near nothing"
        );
        assert!(Nearness::SameCountry > Nearness::SameContinent);
    }

    #[test]
    fn codes_are_two_letters() {
        assert_eq!(code("eu"), Some(*b"EU"));
        assert_eq!(code("EUR"), None);
        assert_eq!(code("E1"), None);
    }
}
