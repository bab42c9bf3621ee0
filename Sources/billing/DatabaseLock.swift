import Foundation
import Glibc

/// An exclusive advisory lock on `<db>.lock`: `billing serve` holds it while
/// it runs, so offline commands that write the journal (`billing keys`)
/// refuse to run beside it instead of racing its sequence numbers.
final class DatabaseLock {
    private let fd: Int32

    init(database: String) throws {
        let directory = (database as NSString).deletingLastPathComponent
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        // The database's own path, links resolved: a symlink (or another
        // spelling of the path) must find the same lock.
        let path = Self.resolved(database) + ".lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CLIError("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw CLIError("\(database) is in use by a running billing server (stop it, or use the Admin API)")
        }
        do {
            try Self.requireOnePath(database)
        } catch {
            close(fd)
            throw error
        }
    }

    /// Refuses a database file with more than one hard link. A hard link is
    /// another path to the same file, with a lock file of its own, and
    /// SQLite keys a database's log (-wal, -shm) by path: two servers, one
    /// on each path, would each commit to a log of its own over one file,
    /// and one's acknowledged debits would be lost; a reading command on
    /// the other path would read the file without the server's log (stale).
    /// A file not created yet has no links to worry about.
    static func requireOnePath(_ database: String) throws {
        var status = stat()
        guard stat(database, &status) == 0, status.st_nlink > 1 else { return }
        throw CLIError("""
            \(database) has \(status.st_nlink) hard links: a database must have one path (SQLite keeps its log \
            beside the path it was opened by, so two servers on two links would each write a log of its own \
            and lose the other's commits); remove the other links (find / -samefile \(database))
            """)
    }

    /// `database` with every symlink and `.`/`..` resolved; for a file not
    /// created yet, its directory resolved and its name kept.
    static func resolved(_ database: String) -> String {
        if let real = realpath(database, nil) {
            defer { free(real) }
            return String(cString: real)
        }
        let directory = (database as NSString).deletingLastPathComponent
        guard let real = realpath(directory.isEmpty ? "." : directory, nil) else { return database }
        defer { free(real) }
        return String(cString: real) + "/" + (database as NSString).lastPathComponent
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
