import BillingSQLite
import Foundation
import Testing

/// The store knows when its path no longer names the file it has open —
/// deleted, renamed, or replaced by another file — which SQLite in WAL mode
/// does not notice (the server then stops).
@Suite struct FileMovedTests {
    @Test func aDeletedRenamedOrReplacedDatabaseFileIsNoticed() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            defer { store.close() }
            let files = FileManager.default
            #expect(!store.fileHasMoved())
            try files.moveItem(atPath: path, toPath: path + ".moved")
            #expect(store.fileHasMoved())
            try files.moveItem(atPath: path + ".moved", toPath: path)
            #expect(!store.fileHasMoved())  // back where it was: the same file
            try files.copyItem(atPath: path, toPath: path + ".copy")
            try files.removeItem(atPath: path)
            #expect(store.fileHasMoved())  // deleted
            try files.moveItem(atPath: path + ".copy", toPath: path)
            #expect(store.fileHasMoved())  // another file under the same name
        }
    }
}
