//! The name of a cgroup: its path relative to the hierarchy root.

use std::fmt;
use std::sync::Arc;

/// A cgroup's path relative to its hierarchy root: `/` for the root,
/// `/system.slice/ssh.service`, `/docker/<id>`. It is cAdvisor's container
/// name and the Prometheus `id` label, and the same in every v1
/// hierarchy and in the unified one.
///
/// Always starts with `/`, never ends with one (except the root) and has
/// no empty components. Cloning shares the text: the same path sits in
/// the discovery sets, the inotify watch table and the tracked readers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CgroupPath(Arc<str>);

impl CgroupPath {
    /// The root cgroup `/`.
    pub fn root() -> Self {
        Self(Arc::from("/"))
    }

    /// Normalises `path` (`a/b/`, `//a//b` → `/a/b`).
    pub fn new(path: &str) -> Self {
        let mut out = String::with_capacity(path.len() + 1);
        for component in path.split('/').filter(|c| !c.is_empty()) {
            out.push('/');
            out.push_str(component);
        }
        if out.is_empty() {
            out.push('/');
        }
        Self(out.into())
    }

    /// The path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the root cgroup.
    pub fn is_root(&self) -> bool {
        &*self.0 == "/"
    }

    /// Whether `other` is this very copy of the path (not merely equal).
    pub fn shares_text_with(&self, other: &CgroupPath) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The child cgroup called `name` (one path component).
    pub fn join(&self, name: &str) -> Self {
        if self.is_root() {
            Self(format!("/{name}").into())
        } else {
            Self(format!("{}/{name}", self.0).into())
        }
    }

    /// The last component (`ssh.service`); empty for the root.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or_default()
    }

    /// Whether `self` is `ancestor` or lies below it.
    pub fn starts_with(&self, ancestor: &CgroupPath) -> bool {
        ancestor.is_root()
            || self.0 == ancestor.0
            || (self.0.starts_with(&*ancestor.0) && self.0.as_bytes()[ancestor.0.len()] == b'/')
    }
}

impl fmt::Display for CgroupPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for CgroupPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_relates_paths() {
        assert_eq!(CgroupPath::new("").as_str(), "/");
        assert_eq!(CgroupPath::new("//a//b/").as_str(), "/a/b");
        assert_eq!(
            CgroupPath::root().join("a").join("b"),
            CgroupPath::new("/a/b")
        );
        assert_eq!(CgroupPath::new("/a/b.service").file_name(), "b.service");
        assert_eq!(CgroupPath::root().file_name(), "");

        let a = CgroupPath::new("/a");
        assert!(CgroupPath::new("/a/b").starts_with(&a));
        assert!(a.starts_with(&a));
        assert!(!CgroupPath::new("/ab").starts_with(&a));
        assert!(a.starts_with(&CgroupPath::root()));
    }
}
