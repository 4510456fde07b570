// One client connection as the control loop keeps it: its peer, buffered input and output,
// the deferred reply it waits for, and its event subscription.
import Control

final class Connection {
    let fd: Int32
    let peer: Peer
    var input: [UInt8] = []
    var output: [UInt8] = []
    var outputStart = 0
    var lastActivity: Double
    /// A deferred reply this connection waits for; later requests wait behind it.
    var waitingFor: Int?
    var closeAfterFlush = false
    /// The peer shut down its sending side: handle what it sent, answer, then close.
    var peerClosed = false
    /// The peer closed completely (POLLHUP): nothing can be delivered any more.
    var peerGone = false
    var subscribed = false
    var cursor: UInt64 = 0
    var filterRun: RunID?
    var filterGroup: String?

    init(fd: Int32, peer: Peer, now: Double) {
        self.fd = fd
        self.peer = peer
        lastActivity = now
    }

    var pendingOutput: Int { output.count - outputStart }

    func send(_ reply: Reply) {
        output.append(contentsOf: reply.rendered.utf8)
        output.append(10)
    }
}
