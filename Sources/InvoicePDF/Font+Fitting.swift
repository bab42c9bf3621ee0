/// Cutting and wrapping WinAnsi text so that nothing drawn crosses its column.
extension Font {
    /// `text` whole if it fits `width` at `size`, else the longest prefix that fits
    /// with an ellipsis after it (empty if not even the ellipsis fits).
    func truncated(_ text: [UInt8], toWidth width: Double, size: Double) -> [UInt8] {
        let limit = Self.units(width, size: size)
        if units(of: text) <= limit { return text }
        let budget = limit - units(of: WinAnsi.ellipsis)
        guard budget >= 0 else { return [] }
        var used = 0
        var end = 0
        while end < text.count, used + units(of: text[end]) <= budget {
            used += units(of: text[end])
            end += 1
        }
        while end > 0, text[end - 1] == WinAnsi.space { end -= 1 }
        let result = Array(text[..<end]) + [WinAnsi.ellipsis]
        assert(units(of: result) <= limit)
        return result
    }

    /// `text` broken at spaces into at most `maxLines` lines no wider than `width`;
    /// a word longer than a line is broken inside, and the last line ends in an
    /// ellipsis when text was left over. Always at least one (maybe empty) line.
    func wrapped(_ text: [UInt8], toWidth width: Double, size: Double, maxLines: Int) -> [[UInt8]] {
        precondition(maxLines >= 1)
        let limit = Self.units(width, size: size)
        let words = text.split(separator: WinAnsi.space).map { Array($0) }
        var lines: [[UInt8]] = []
        var line: [UInt8] = []
        for var word in words {
            let candidate = line.isEmpty ? word : line + [WinAnsi.space] + word
            if units(of: candidate) <= limit {
                line = candidate
                continue
            }
            if !line.isEmpty { lines.append(line) }
            // A word wider than the column: break it where it stops fitting.
            while units(of: word) > limit {
                let cut = prefixLength(of: word, fittingUnits: limit)
                lines.append(Array(word[..<cut]))
                word = Array(word[cut...])
            }
            line = word
        }
        if !line.isEmpty || lines.isEmpty { lines.append(line) }
        guard lines.count > maxLines else { return lines }
        // Keep the first lines; the last kept one carries the rest, cut with an ellipsis.
        let rest = lines[(maxLines - 1)...].joined(separator: [WinAnsi.space])
        return Array(lines[..<(maxLines - 1)]) + [truncated(Array(rest), toWidth: width, size: size)]
    }

    /// How many leading bytes of `word` fit in `limit` units; at least one, so
    /// wrapping always advances even in a column narrower than a glyph.
    private func prefixLength(of word: [UInt8], fittingUnits limit: Int) -> Int {
        var used = units(of: word[0])
        var end = 1
        while end < word.count, used + units(of: word[end]) <= limit {
            used += units(of: word[end])
            end += 1
        }
        return end
    }

    /// Points at `size` as font units, rounded down so fitted text stays inside.
    /// The nudge keeps a width measured from this very text (units × size / 1000,
    /// then back) from landing a hair under its own units.
    private static func units(_ width: Double, size: Double) -> Int {
        precondition(size > 0)
        return Int((width * 1000 / size + 1e-6).rounded(.down))
    }
}
