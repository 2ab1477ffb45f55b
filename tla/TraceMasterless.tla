-------------------------- MODULE TraceMasterless --------------------------
(***************************************************************************)
(* Trace validation: replays a simulator trace (spec/TRACE.md, converted   *)
(* by tla/tracegen into TraceData.tla) against Masterless.tla.  Step i+1   *)
(* of the trace must be an enabled action of the model at the recorded    *)
(* node, and the model's state after it must project onto the recorded    *)
(* state of that node.  A trace the protocol cannot produce leaves TLC     *)
(* without a successor: "Deadlock reached" (exit 11).                      *)
(***************************************************************************)
EXTENDS Masterless, TraceData

VARIABLE ti    \* index of the last trace line replayed
TVars == <<vars, ti>>

\* What the trace records of node n: its open connections (with the peer and
\* the peer's incarnation once its HELLO was handled) and, per peer listed,
\* the keep flag and the session.
ConnsOf(n) ==
    LET ends == {x \in Slots \X E : NodeOf(x[1], x[2]) = n
                                    /\ C[x[1]].st[x[2]] \in {"hello", "join", "welcome", "est"}}
        hello(x) == C[x[1]].st[x[2]] = "hello"
    IN {[c |-> x[1], p |-> IF hello(x) THEN 0 ELSE PeerOf(x[1], x[2]),
         pinc |-> IF hello(x) THEN 0 ELSE C[x[1]].pinc[x[2]],
         st |-> C[x[1]].st[x[2]], sess |-> C[x[1]].sess[x[2]]] : x \in ends}

\* The frame a "frame" or "closed" line received is the one the model has in
\* flight toward that end: same type and, for HELLO (incarnation), JOIN
\* (closed), WELCOME (sess) and KEEP, the same fields (BYE codes are not
\* modelled; a FIN is the model's BYE).  One gap: fsm/ forgets an idle peer
\* record, and with it its follower memory, once it has lingered twice the
\* peer timeout (fsm/peer.go, lingerUntil); the model never forgets fCl.  So
\* a JOIN may say closed = 0 where the model remembers more; the leader's
\* decision on it is still checked by the recorded states.
FrameOK(r) ==
    LET ch == C[r.conn].ch[Other(r.end)] IN
    /\ ch # <<>>
    /\ Head(ch).t = r.ftype
    /\ r.ftype \in {"HELLO", "JOIN", "WELCOME", "KEEP"} => Head(ch).k = r.fk
    /\ r.ftype \in {"HELLO", "WELCOME", "KEEP"} => Head(ch).x = r.fx
    /\ r.ftype = "JOIN" => Head(ch).x = r.fx \/ r.fx = 0

Matches(r) ==
    /\ inc'[r.node] = r.inc
    /\ ConnsOf(r.node)' = r.conns
    /\ \A m \in DOMAIN r.ses : ses'[r.node][m] = r.ses[m] /\ keep'[r.node][m] = r.keep[m]

\* User intent (keep) comes from the trace on the steps that carry no protocol action.
KeepFrom(r) == [keep EXCEPT ![r.node] = [m \in Nodes |->
                    IF m \in DOMAIN r.keep THEN r.keep[m] ELSE keep[r.node][m]]]

Quiet(r) ==
    /\ keep' = KeepFrom(r)
    /\ UNCHANGED <<C, inc, ses, ctr, fInc, fCl, budget, ghost>>

Step(r) ==
    LET n == r.node IN
    CASE r.kind = "dialed" ->
            /\ OpenConn(n, r.peer, r.conn)
            /\ keep' = KeepFrom(r)
            /\ UNCHANGED <<inc, ses, ctr, fInc, fCl, budget, ghost>>
      [] r.kind = "accept" -> Accept(r.conn) /\ NodeOf(r.conn, "a") = n
      [] r.kind \in {"frame", "closed"} ->
            NodeOf(r.conn, r.end) = n /\ FrameOK(r) /\ Recv(r.conn, r.end)
      [] r.kind = "reset" ->   \* the connection failed at n: what is in flight is lost
            NodeOf(r.conn, r.end) = n /\ Timeout(r.conn, r.end)
      [] r.kind = "tick" ->
            \/ \E c \in Slots, e \in E : NodeOf(c, e) = n /\ Timeout(c, e)
            \/ Quiet(r)
      [] r.kind = "keep" -> SetKeep(n, r.peer, r.keepTo)
      [] r.kind = "disconnect" -> Disconnect(n, r.peer)
      [] r.kind = "crash" -> CrashRestart(n)
      [] OTHER -> Quiet(r)   \* connect, dial, dial-failed, restart, noop

TraceInit == Init /\ ti = 0

TraceNext ==
    \/ /\ ti < Len(Trace)
       /\ \E r \in {Trace[ti + 1]} :   \* bound as a value: priming must not touch ti
            Step(r) /\ Matches(r) /\ ti' = ti + 1
    \/ /\ ti = Len(Trace)      \* the whole trace was replayed
       /\ UNCHANGED TVars

TraceSpec == TraceInit /\ [][TraceNext]_TVars

\* Reported for information: TLC checks the protocol's safety along the trace.
TraceSafety == AtMostOne /\ Agreement /\ NoSelf /\ NoProtocolError
=============================================================================
