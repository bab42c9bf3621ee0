import Foundation

/// The poppler command-line tools (Debian's poppler-utils), standing in for the
/// readers users open invoices with. Missing tools fail the test: CI installs them.
enum Poppler {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    struct Result {
        var status: Int32
        var output: String
        var errors: String
    }

    /// Runs `tool` with `arguments` to completion, capturing both output streams
    /// in files (a pipe left unread could fill and stall the tool).
    static func run(_ tool: String, _ arguments: [String], in directory: URL) throws -> Result {
        guard let executable = path(of: tool) else {
            throw Failure(description: "\(tool) is not on PATH; install poppler-utils "
                + "(apt-get update && apt-get install -y poppler-utils)")
        }
        let outputFile = directory.appendingPathComponent("\(tool).out")
        let errorsFile = directory.appendingPathComponent("\(tool).err")
        try Data().write(to: outputFile)
        try Data().write(to: errorsFile)
        let output = try FileHandle(forWritingTo: outputFile)
        let errors = try FileHandle(forWritingTo: errorsFile)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        process.waitUntilExit()
        try output.close()
        try errors.close()
        return Result(
            status: process.terminationStatus,
            output: try String(contentsOf: outputFile, encoding: .utf8),
            errors: try String(contentsOf: errorsFile, encoding: .utf8))
    }

    private static func path(of tool: String) -> String? {
        let search = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return search.split(separator: ":")
            .map { "\($0)/\(tool)" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

/// A fresh directory for one test's files, removed when `body` returns.
func withScratchDirectory<T>(_ body: (URL) throws -> T) throws -> T {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("InvoicePDFTests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try body(directory)
}
