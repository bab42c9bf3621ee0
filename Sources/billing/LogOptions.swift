import ArgumentParser
import Foundation
import Logging
import Synchronization

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Logs go to standard error as one line per event with key=value metadata.
func bootstrapLogging(level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler = LineLogHandler(label: label)
        handler.logLevel = level
        return handler
    }
}

/// One line per event on standard error, as swift-log's StreamLogHandler
/// writes it — `2026-12-07T10:44:16+0000 info billing: a=1 b=2 [Module] message`,
/// metadata sorted by key — but with a value that holds a space, a quote,
/// a backslash, `=` or a control character written in double quotes with
/// those escaped: `key_filter=stored at seq 24` split into fields a
/// key=value parser could not tell from the real ones.
struct LineLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    /// Lines from every thread, whole.
    private static let output = Mutex(())

    init(label: String) {
        self.label = label
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let explicit = event.metadata { all.merge(explicit) { _, new in new } }
        var text = "\(Self.timestamp()) \(event.level) \(label):"
        for (key, value) in all.sorted(by: { $0.key < $1.key }) {
            text += " \(key)=\(Self.field("\(value)"))"
        }
        text += " [\(event.source)] \(event.message)\n"
        // write(2) to descriptor 2, errors ignored (as StreamLogHandler's
        // fwrite): a log reader gone (EPIPE; SIGPIPE is ignored) or a full
        // disk must not stop the server — Foundation's FileHandle.write traps.
        Self.output.withLock { _ in
            var line = text
            line.withUTF8 { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = Glibc.write(2, bytes.baseAddress! + offset, bytes.count - offset)
                    if written > 0 {
                        offset += written
                    } else if written < 0 && errno == EINTR {
                        continue
                    } else {
                        // Dropped; a line cut short is ended (best effort),
                        // so the next one is not glued onto it.
                        if offset > 0 { _ = "\n".withCString { Glibc.write(2, $0, 1) } }
                        return
                    }
                }
            }
        }
    }

    /// A value as written: as is, or quoted with `"` and `\` escaped and
    /// control characters as `\n`, `\t`, `\u{…}`.
    static func field(_ value: String) -> String {
        let plain = !value.isEmpty && value.unicodeScalars.allSatisfy {
            !$0.properties.isWhitespace && $0 != "\"" && $0 != "\\" && $0 != "=" && !Self.escaped($0)
        }
        guard !plain else { return value }
        var quoted = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\t": quoted += "\\t"
            case "\r": quoted += "\\r"
            default:
                if Self.escaped(scalar) {
                    quoted += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    quoted.unicodeScalars.append(scalar)
                }
            }
        }
        return quoted + "\""
    }

    /// Written as `\u{…}` inside quotes: control characters, and line and
    /// paragraph separators (line breaks to some readers).
    static func escaped(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .lineSeparator, .paragraphSeparator: true
        default: false
        }
    }

    /// Local time to the second with its offset, as StreamLogHandler.
    static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        var buffer = [Int8](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
