import BillingAuth
import Foundation
import Glibc

/// An exclusive advisory lock on `<db>.lock`: `billing serve` holds it while
/// it runs, so offline commands that write the journal (`billing keys`)
/// refuse to run beside it instead of racing its sequence numbers.
final class DatabaseLock {
    private let fd: Int32

    init(database: String) throws {
        try Self.requireFilePath(database)
        let directory = (database as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw CLIError("cannot create the directory \(directory) for the database \(database): \((error as NSError).localizedFailureReason ?? "permission denied or not a directory")")
            }
        }
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

    /// A key or a token given as `--db` (pasted in the wrong place) is
    /// refused unshown: `serve` made a database named after it and logged
    /// its path (session 31, a review).
    static func requireNotSecret(_ database: String) throws {
        guard !looksSecret(database) else {
            throw CLIError("--db holds an API key or a user token (not shown): name the database file")
        }
    }

    /// Refuses a path that cannot be a database file: empty, or a directory
    /// (session 28: "WAL journal mode unavailable", "has 2 hard links").
    static func requireFilePath(_ database: String) throws {
        guard !database.isEmpty else { throw CLIError("--db is empty: name the database file") }
        try requireNotSecret(database)
        // SQLite reads `file:` as a URI even unasked: the file it makes is
        // not the one the lock, link and mode checks look at.
        guard !database.hasPrefix("file:") else {
            throw CLIError("--db \(database) looks like an SQLite URI: give a file path (./\(database) if that is its name)")
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: database, isDirectory: &isDirectory), isDirectory.boolValue {
            throw CLIError("--db \(database) is a directory: name the database file (e.g. \(database)/billing.sqlite)")
        }
    }

    /// Marks the lock file once the database opened as a billing ledger:
    /// from then on, the database missing beside it means it was moved or
    /// deleted (`requireNotMovedAway`). (Session 28: the lock file's mere
    /// existence was taken for it, and a start refused on a file of
    /// something else left a lock that refused the next start on a new one.)
    func markOpened() {
        let mark: [UInt8] = Array("billing ledger opened here\n".utf8)
        _ = ftruncate(fd, 0)
        _ = mark.withUnsafeBytes { pwrite(fd, $0.baseAddress, mark.count, 0) }
    }

    /// Refuses a missing database whose lock file says a ledger was opened
    /// there (`markOpened`): a new, empty ledger in its place would serve
    /// (or take keys) as if nothing had been billed. Call before the lock is
    /// taken (taking it creates the lock file).
    static func requireNotMovedAway(_ database: String) throws {
        let lockPath = resolved(database) + ".lock"
        var status = stat()
        guard !FileManager.default.fileExists(atPath: database), stat(lockPath, &status) == 0, status.st_size > 0 else { return }
        throw CLIError("the database \(database) is missing, but \(lockPath) shows a ledger was opened there: was it moved or deleted? Restore it, or remove \(lockPath) to start a new, empty ledger")
    }

    /// Refuses a database file with more than one hard link. A hard link is
    /// another path to the same file, with a lock file of its own, and
    /// SQLite keys a database's log (-wal, -shm) by path: two servers, one
    /// on each path, would each commit to a log of its own over one file,
    /// and one's acknowledged debits would be lost; a reading command on
    /// the other path would read the file without the server's log (stale).
    /// A file not created yet has no links to worry about.
    static func requireOnePath(_ database: String) throws {
        try requireNotSecret(database)
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
        // A symlink to a file not there (moved away, or not made yet): its
        // target's path, as SQLite will open it (session 28's diff review:
        // the link's own path was taken, and its lock was not the ledger's).
        var database = database
        for _ in 0..<40 {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: database) else { break }
            let directory = (database as NSString).deletingLastPathComponent
            database = target.hasPrefix("/") || directory.isEmpty ? target : directory + "/" + target
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
