import Foundation
import Glibc

/// An exclusive advisory lock on `<db>.lock`: `billing serve` holds it while
/// it runs, so offline commands that write the journal (`billing keys`)
/// refuse to run beside it instead of racing its sequence numbers.
final class DatabaseLock {
    private let fd: Int32

    init(database: String) throws {
        let path = database + ".lock"
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CLIError("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw CLIError("\(database) is in use by a running billing server (stop it, or use the Admin API)")
        }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
