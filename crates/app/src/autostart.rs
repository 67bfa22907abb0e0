//! Starting the phone at login: an XDG autostart entry
//! (`$XDG_CONFIG_HOME/autostart/softphone.desktop`, `~/.config/autostart`
//! by default, under `SOFTPHONE_HOME` when that is set, see [`Paths`]),
//! written atomically when the setting is turned on and removed when it is
//! turned off. The entry runs this very executable, so an unpacked build
//! starts as well as an installed one; with a tray host, the phone then
//! waits behind its tray icon.

use crate::paths::{Paths, write_atomically};
use std::path::Path;

/// Why the entry could not be written or removed.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} the login entry {path}: {source}")]
pub struct AutostartError {
    action: &'static str,
    path: String,
    source: std::io::Error,
}

/// Writes the entry (`on`) or removes it; removing a missing entry is done already.
pub fn set(paths: &Paths, on: bool) -> Result<(), AutostartError> {
    let path = paths.autostart_file();
    let error = |action, source| AutostartError { action, path: path.display().to_string(), source };
    if on {
        let exe = std::env::current_exe().map_err(|e| error("find the program for", e))?;
        write_atomically(&path, entry(&exe).as_bytes()).map_err(|e| error("write", e))
    } else {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(error("remove", e)),
            _ => Ok(()),
        }
    }
}

/// Whether the entry is there.
pub fn is_set(paths: &Paths) -> bool {
    paths.autostart_file().is_file()
}

/// The desktop entry that runs `exe` at login.
pub fn entry(exe: &Path) -> String {
    format!(
        "[Desktop Entry]\nType=Application\nName=Softphone\nComment=Rings for calls with its window closed\n\
         Exec={}\nIcon=softphone\nTerminal=false\nX-GNOME-Autostart-enabled=true\n",
        exec_argument(&exe.to_string_lossy())
    )
}

/// `path` as one argument of an `Exec=` line: quoted when it holds a
/// reserved character, with `"`, `` ` ``, `$` and `\` escaped inside the
/// quotes, `%` doubled (the Desktop Entry spec), and the backslashes
/// doubled again for the string value.
fn exec_argument(path: &str) -> String {
    let reserved = |c: char| " \t\n\"'\\><~|&;$*?#()`".contains(c);
    let mut argument = if path.contains(reserved) {
        let mut quoted = String::from("\"");
        for c in path.chars() {
            if matches!(c, '"' | '`' | '$' | '\\') {
                quoted.push('\\');
            }
            quoted.push(c);
        }
        quoted.push('"');
        quoted
    } else {
        path.to_owned()
    };
    argument = argument.replace('%', "%%");
    argument.replace('\\', "\\\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_runs_this_program_quoted_as_the_spec_asks() {
        let plain = entry(Path::new("/usr/bin/softphone"));
        assert!(plain.starts_with("[Desktop Entry]\n"));
        assert!(plain.contains("\nExec=/usr/bin/softphone\n"), "{plain}");
        assert!(plain.contains("\nType=Application\n"));
        let spaced = entry(Path::new("/home/a b/100%/soft$phone"));
        assert!(spaced.contains("\nExec=\"/home/a b/100%%/soft\\\\$phone\"\n"), "{spaced}");
    }

    #[test]
    fn turning_it_on_writes_the_entry_and_off_removes_it() {
        let home = tempfile::tempdir().unwrap();
        let paths = Paths::under(home.path().to_owned());
        assert!(!is_set(&paths));
        set(&paths, false).expect("removing a missing entry is fine");
        set(&paths, true).unwrap();
        let written = std::fs::read_to_string(home.path().join("autostart/softphone.desktop")).unwrap();
        let exe = std::env::current_exe().unwrap();
        assert_eq!(written, entry(&exe));
        // Atomically: nothing but the entry in the folder.
        assert_eq!(std::fs::read_dir(home.path().join("autostart")).unwrap().count(), 1);
        set(&paths, true).unwrap();
        set(&paths, false).unwrap();
        assert!(!is_set(&paths));
        assert!(!home.path().join("autostart/softphone.desktop").exists());
    }
}
