// One user must not lock everybody out: a non-admin uid may hold at most
// maxConnectionsPerUser connections, and the last reservedConnections slots are for root, the
// daemon's user and admins. The decision is a pure function (a table here); the end-to-end test
// holds connections open as other uids (setpriv) against a real in-process daemon.
import Control
@testable import Daemon
import Foundation
import Testing

@Suite(.serialized)
struct ConnectionLimitTests {
    @Test func theDecisionTable() {
        var config = DaemonConfiguration(stateDirectory: "/nonexistent")
        config.maxConnections = 12
        config.maxConnectionsPerUser = 4
        config.reservedConnections = 4
        let alice = Peer(pid: 1, uid: 1000, gid: 1000, name: "alice", admin: false)
        let root = Peer(pid: 1, uid: 0, gid: 0, name: "root", admin: true)
        func limit(_ p: Peer, _ open: [UInt32]) -> String? { ControlServer.connectionLimit(peer: p, open: open, config: config) }
        #expect(limit(alice, []) == nil)
        #expect(limit(alice, [1000, 1000, 1000]) == nil)
        #expect(limit(alice, [1000, 1000, 1000, 1000]) == "too many connections from uid 1000 (alice): 4 open, the per-user limit is 4 (--max-connections-per-user); close some and try again")
        #expect(limit(alice, [1001, 1001, 1001, 1001, 1002, 1002, 1002]) == nil)
        #expect(limit(alice, [1001, 1001, 1001, 1001, 1002, 1002, 1002, 1002])?.contains("8 of 12 in use; the last 4 are reserved for root, the daemon's user and admins") == true)
        // Root and admins: no per-user limit, and the reserved slots are theirs; the total still holds.
        #expect(limit(root, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) == nil)
        #expect(limit(root, Array(repeating: 0, count: 12)) == "too many connections (12, the daemon's limit --max-connections); try again later")
        // Nonsense configurations do not trap: more reserved slots than connections lock out non-admins only.
        config.reservedConnections = 50
        #expect(limit(alice, []) != nil)
        #expect(limit(root, []) == nil)
    }

    @Test(.enabled(if: canActAsOtherUsers))
    func aUserAtItsLimitLocksOutNeitherRootNorOthers() throws {
        let d = try TestDaemon {
            $0.maxConnections = 12
            $0.maxConnectionsPerUser = 4
            $0.reservedConnections = 4
        }
        defer { d.stop(); try? FileManager.default.removeItem(atPath: d.dir) }
        #expect(chmod(d.socketPath, 0o666) == 0)
        // uid 65534 asks for 6: four are served, the fifth and sixth get BUSY naming the limit.
        let first = try ConnectionHolder(uid: 65534, socket: d.socketPath, count: 6)
        defer { first.release() }
        let greetings = first.greetings(6)
        #expect(greetings.count == 6, "\(greetings)")
        #expect(greetings.prefix(4).allSatisfy { $0.hasPrefix("HELLO ") && $0.contains("\"uid\":65534") }, "\(greetings)")
        for g in greetings.dropFirst(4) {
            #expect(g == "ERR BUSY too many connections from uid 65534 (nobody): 4 open, the per-user limit is 4 (--max-connections-per-user); close some and try again", "\(g)")
        }
        // Root still gets in.
        #expect(try d.client().ok("ping")["pong"] == .bool(true))
        // So does a second user while the first holds its maximum.
        let second = try ConnectionHolder(uid: 65533, socket: d.socketPath, count: 4)
        defer { second.release() }
        let g2 = second.greetings(4)
        #expect(g2.count == 4 && g2.allSatisfy { $0.hasPrefix("HELLO ") && $0.contains("\"uid\":65533") }, "\(g2)")
        // Eight non-admin connections: the remaining four are reserved; a third user waits, root does not.
        let third = try ConnectionHolder(uid: 65532, socket: d.socketPath, count: 1)
        defer { third.release() }
        let g3 = third.greetings(1)
        // (8 of 12, or 9 while the daemon has yet to notice that the ping connection above closed.)
        #expect(g3.first?.hasPrefix("ERR BUSY too many connections (") == true
                && g3.first?.contains("of 12 in use; the last 4 are reserved for root, the daemon's user and admins") == true, "\(g3)")
        var rootClients: [TestClient] = []
        for _ in 0 ..< 4 { rootClients.append(try d.client()) }
        #expect(try rootClients.last?.ok("ping")["pong"] == .bool(true))
        // Released connections are slots again.
        first.release()
        rootClients = []
        var again: [String] = []
        #expect(waitFor(20) {
            let h = try? ConnectionHolder(uid: 65532, socket: d.socketPath, count: 1)
            again = h?.greetings(1) ?? []
            h?.release()
            return again.first?.hasPrefix("HELLO ") == true
        }, "\(again)")
    }
}
