//! Which container a process runs in, and from which image: read on the
//! collector at exec from `/proc/<pid>/cgroup` and the container engines'
//! own metadata files, so that host baselines can key a program by its
//! image (every container of an image shares one profile) and alerts carry
//! ECS `container.id` and `container.image.name`.
//!
//! The container id is the 64-hex-digit name container engines give a
//! container's cgroup (`libpod-<id>.scope`, `docker-<id>.scope`,
//! `cri-containerd-<id>.scope`, `/docker/<id>`...), on any hierarchy of the
//! process's cgroup list. The image comes from the engine's store:
//!
//! - podman and buildah (containers/storage):
//!   `<store>/overlay-containers/containers.json`, the `image-name` of each
//!   container's `metadata`;
//! - docker: `<store>/containers/<id>/config.v2.json`, `Config.Image`.
//!
//! A container whose image is not found (another engine, a store not
//! listed) still has its id; its programs are then keyed by executable
//! alone, as on the host.

use crate::messages::{ContainerFields, ContainerImage};
use lru::LruCache;
use serde::Deserialize;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

/// Largest metadata file read (a host with thousands of containers holds a
/// few MB in podman's `containers.json`).
const MAX_METADATA: u64 = 64 << 20;

/// Containers whose image is remembered.
const CACHE: usize = 4096;

/// The container id in a process's cgroup list (`/proc/<pid>/cgroup`
/// text), if any.
pub fn id_in_cgroups(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .flat_map(|path| path.split('/'))
        .find_map(hex_id)
}

/// The 64-hex-digit id inside one cgroup path component.
fn hex_id(part: &str) -> Option<String> {
    let part = part.strip_suffix(".scope").unwrap_or(part);
    let tail = part.rsplit(['-', ':']).next()?;
    (tail.len() == 64 && tail.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| tail.to_ascii_lowercase())
}

/// Finds containers and their images (bounded cache by container id).
pub struct Containers {
    stores: Vec<PathBuf>,
    images: LruCache<String, Option<String>>,
}

impl Containers {
    /// Looks for images in `stores` (containers/storage or docker roots).
    pub fn new(stores: &[PathBuf]) -> Self {
        Containers {
            stores: stores.to_vec(),
            images: LruCache::new(NonZeroUsize::new(CACHE).expect("non-zero")),
        }
    }

    /// The container `pid` runs in; `None` on the host or when the process
    /// is gone.
    pub fn of_pid(&mut self, pid: u32) -> Option<ContainerFields> {
        let text = crate::procfs::cgroup(pid).ok()?;
        let id = id_in_cgroups(&text)?;
        let image = match self.images.get(&id) {
            Some(known) => known.clone(),
            None => {
                let found = self.stores.iter().find_map(|s| image_in(s, &id));
                // Not cached when not found: the engine may write its
                // metadata after the container's first process started.
                if found.is_some() {
                    self.images.put(id.clone(), found.clone());
                }
                found
            }
        };
        Some(ContainerFields {
            id,
            image: image.map(|name| ContainerImage { name }),
        })
    }
}

/// The image of container `id` in one store, either kind.
fn image_in(store: &Path, id: &str) -> Option<String> {
    podman_image(&store.join("overlay-containers/containers.json"), id)
        .or_else(|| docker_image(&store.join("containers").join(id).join("config.v2.json")))
}

fn read_bounded(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    f.take(MAX_METADATA).read_to_end(&mut buf).ok()?;
    Some(buf)
}

fn podman_image(path: &Path, id: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Entry {
        id: String,
        #[serde(default)]
        metadata: String,
    }
    #[derive(Deserialize)]
    struct Metadata {
        #[serde(rename = "image-name", default)]
        image_name: String,
    }
    let entries: Vec<Entry> = serde_json::from_slice(&read_bounded(path)?).ok()?;
    let e = entries.into_iter().find(|e| e.id == id)?;
    let m: Metadata = serde_json::from_str(&e.metadata).ok()?;
    Some(m.image_name).filter(|n| !n.is_empty())
}

fn docker_image(path: &Path) -> Option<String> {
    #[derive(Deserialize)]
    struct Config {
        #[serde(rename = "Config")]
        config: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(rename = "Image", default)]
        image: String,
    }
    let c: Config = serde_json::from_slice(&read_bounded(path)?).ok()?;
    Some(c.config.image).filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f1c0b6a5e2d4c8b9a7f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5c4b3a291";

    #[test]
    fn container_ids_are_found_in_every_engines_cgroup_names() {
        for text in [
            format!("0::/machine.slice/libpod-{ID}.scope/container\n"),
            format!("0::/system.slice/docker-{ID}.scope\n"),
            format!("12:memory:/docker/{ID}\n0::/\n"),
            format!("0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-{ID}.scope\n"),
            format!("0::/kubepods/besteffort/pod1/crio-{ID}\n"),
            format!("4:memory:/libpod_parent/libpod-{ID}\n0::/\n"),
        ] {
            assert_eq!(id_in_cgroups(&text).as_deref(), Some(ID), "{text}");
        }
        for host in [
            "0::/user.slice/user-1000.slice/session-2.scope\n",
            "0::/\n",
            "0::/system.slice/daisi.service\n",
            "4:memory:/process_api/7f082a260a2e031a7a79df9acc8c984b\n",
        ] {
            assert_eq!(id_in_cgroups(host), None, "{host}");
        }
    }

    #[test]
    fn images_are_read_from_podman_and_docker_stores() {
        let dir = tempfile::tempdir().unwrap();
        let podman = dir.path().join("podman");
        std::fs::create_dir_all(podman.join("overlay-containers")).unwrap();
        let meta = serde_json::json!({"image-name": "localhost/web:1", "name": "web"});
        let entries = serde_json::json!([
            {"id": "other", "metadata": "{}"},
            {"id": ID, "names": ["web"], "image": "abc", "metadata": meta.to_string()},
        ]);
        std::fs::write(
            podman.join("overlay-containers/containers.json"),
            entries.to_string(),
        )
        .unwrap();
        assert_eq!(image_in(&podman, ID).as_deref(), Some("localhost/web:1"));
        assert_eq!(image_in(&podman, "other"), None);

        let docker = dir.path().join("docker");
        std::fs::create_dir_all(docker.join("containers").join(ID)).unwrap();
        std::fs::write(
            docker.join("containers").join(ID).join("config.v2.json"),
            r#"{"ID":"x","Config":{"Image":"nginx:1.25","Cmd":["nginx"]}}"#,
        )
        .unwrap();
        assert_eq!(image_in(&docker, ID).as_deref(), Some("nginx:1.25"));
        // Not there, or not JSON: no image, no error.
        std::fs::write(
            docker.join("containers").join(ID).join("config.v2.json"),
            "{",
        )
        .unwrap();
        assert_eq!(image_in(&docker, ID), None);
        assert_eq!(image_in(&dir.path().join("none"), ID), None);
    }
}
