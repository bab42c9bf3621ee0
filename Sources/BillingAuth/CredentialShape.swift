/// Whether `text` holds a service key (`bk_` and a 12-digit hex id, then
/// `_`) or a user JWT (a word starting `eyJ` — a JSON header in base64url
/// — of three dot-separated parts): what must never be echoed in an error,
/// a log line or a stored name.
public func looksSecret(_ text: String) -> Bool {
    if text.contains(/bk_[0-9a-f]{12}_/) { return true }
    return text.split(whereSeparator: { $0.isWhitespace || "\"'=:".contains($0) }).contains { word in
        word.hasPrefix("eyJ") && word.split(separator: ".", omittingEmptySubsequences: false).count == 3
    }
}

/// `text` with every service key and user token in it replaced by a note:
/// for a message quoting what was given (an option's value joined with
/// `=`, a file name, a server's message repeating a request field). A
/// token is a word (`eyJ…` after a start or a character no token holds):
/// `config/keyJobs.2026.json` is not one.
public func redactingSecrets(_ text: String) -> String {
    text.replacing(/bk_[0-9a-f]{12}_[A-Za-z0-9_-]*/, with: "(not shown: an API key)")
        .replacing(/(^|[^A-Za-z0-9_.-])eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/) { match in
            match.output.1 + "(not shown: a user token)"
        }
}
