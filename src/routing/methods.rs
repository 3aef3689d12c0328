//! Method conditions of a route.
//!
//! A route either accepts any method or lists the ones it accepts. A route
//! that lists GET also answers HEAD, unless another route at the same path
//! lists HEAD itself or accepts any method.

use std::fmt;

use http::Method;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MethodSet {
    Any,
    Only(Vec<Method>),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MethodError {
    #[error("the list is empty; leave 'methods' out to accept any method")]
    Empty,
    #[error("'{0}' is not an HTTP method token")]
    NotAToken(String),
    #[error("'{0}' must be upper-case: methods are case-sensitive ('{1}')")]
    NotUpperCase(String, String),
    #[error("'{0}' is listed twice")]
    Duplicate(String),
}

impl MethodSet {
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<MethodSet, MethodError> {
        if names.is_empty() {
            return Err(MethodError::Empty);
        }
        let mut methods: Vec<Method> = Vec::with_capacity(names.len());
        for name in names {
            let name = name.as_ref();
            let upper = name.to_ascii_uppercase();
            if name != upper {
                return Err(MethodError::NotUpperCase(name.to_owned(), upper));
            }
            let method = Method::from_bytes(name.as_bytes())
                .map_err(|_| MethodError::NotAToken(name.to_owned()))?;
            if methods.contains(&method) {
                return Err(MethodError::Duplicate(name.to_owned()));
            }
            methods.push(method);
        }
        Ok(MethodSet::Only(methods))
    }

    /// Whether the set names `method` itself (not via HEAD-from-GET).
    pub fn lists(&self, method: &Method) -> bool {
        matches!(self, MethodSet::Only(methods) if methods.contains(method))
    }

    /// Whether two sets could both claim a request.
    pub fn overlaps(&self, other: &MethodSet) -> bool {
        match (self, other) {
            (MethodSet::Any, MethodSet::Any) => true,
            (MethodSet::Only(a), MethodSet::Only(b)) => a.iter().any(|m| b.contains(m)),
            _ => false,
        }
    }
}

impl fmt::Display for MethodSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MethodSet::Any => f.write_str("any"),
            MethodSet::Only(methods) => {
                let names: Vec<&str> = methods.iter().map(Method::as_str).collect();
                f.write_str(&names.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_must_be_upper_case_unique_tokens() {
        assert_eq!(MethodSet::parse::<&str>(&[]), Err(MethodError::Empty));
        assert!(matches!(
            MethodSet::parse(&["get"]),
            Err(MethodError::NotUpperCase(_, _))
        ));
        assert!(matches!(
            MethodSet::parse(&["GET", "GET"]),
            Err(MethodError::Duplicate(_))
        ));
        assert!(matches!(
            MethodSet::parse(&["GE T"]),
            Err(MethodError::NotAToken(_))
        ));
        assert_eq!(
            MethodSet::parse(&["GET", "PURGE"]).unwrap().to_string(),
            "GET, PURGE"
        );
    }

    #[test]
    fn only_any_any_or_shared_methods_overlap() {
        let get = MethodSet::parse(&["GET"]).unwrap();
        let post = MethodSet::parse(&["POST", "GET"]).unwrap();
        let put = MethodSet::parse(&["PUT"]).unwrap();
        assert!(MethodSet::Any.overlaps(&MethodSet::Any));
        assert!(!MethodSet::Any.overlaps(&get));
        assert!(get.overlaps(&post));
        assert!(!get.overlaps(&put));
    }
}
