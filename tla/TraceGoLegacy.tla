------------------------- MODULE TraceGoLegacy -------------------------
(***************************************************************************)
(* Trace validation of a Go node's 0.4.1 connections: replays the Go       *)
(* node's own trace (spec/TRACE.md; tla/tracegen -legacy writes           *)
(* TraceData.tla) against GoLegacy.tla.  Only the Go node is traced: the   *)
(* 0.4.1 nodes are the model's environment, and any number of their steps  *)
(* (bounded by the budgets) may come between two lines.  Each line must be *)
(* an enabled step of the Go node, the message it receives must be the    *)
(* model's next one on that connection, and the Go node's state after it   *)
(* must be the recorded one.                                               *)
(*                                                                         *)
(* With the environment free, a wrong guess of it leaves TLC in a state    *)
(* with no successor although another guess replays the trace, so a dead  *)
(* end proves nothing.  Instead the invariant TraceNotReplayed (ti is not  *)
(* at the end) is violated exactly when some behaviour of the model        *)
(* replays every line: a valid trace makes TLC report that violation (exit *)
(* 12), a trace the model cannot produce makes TLC end without one (exit  *)
(* 0, every reachable state explored).                                    *)
(***************************************************************************)
EXTENDS GoLegacy, TraceData

VARIABLE ti
TVars == <<vars, ti>>

\* Go's open connections as a line lists them (the peer once its HELLO was
\* handled; 0.4.1 connections have no incarnation and no session number).
ConnsOf ==
    {[c |-> c, p |-> IF C[c].st[GoEnd(c)] = "hello" THEN 0 ELSE PeerAt(c), st |-> C[c].st[GoEnd(c)]] :
        c \in {x \in Slots : InUse(x) /\ C[x].st[GoEnd(x)] \in {"hello", "join", "welcome", "est"}}}

\* The 0.4.1 message a Go frame line names (ftype is Go's frame type).
MsgOf(t) == CASE t = "HELLO" -> "ID" [] t = "JOIN" -> "PRIO" [] t = "WELCOME" -> "CONFIRM"
                 [] t = "KEEP" -> "KEEP" [] t = "BYE" -> "FIN" [] OTHER -> t

\* fx of a JOIN: the priority (0, Min, Max), or -1 for a random one.
FrameOK(r) ==
    LET ch == C[r.conn].ch[Other(GoEnd(r.conn))] IN
    /\ ch # <<>>
    /\ Head(ch).t = MsgOf(r.ftype)
    /\ r.ftype = "KEEP" => Head(ch).p = r.fk
    /\ r.ftype = "JOIN" => IF r.fx = -1 THEN Head(ch).p \in Rand ELSE Head(ch).p = r.fx

Matches(r) ==
    /\ ConnsOf' = r.conns
    /\ \A p \in DOMAIN r.ses : ses'[p] = r.ses[p] /\ keep'[p] = r.keep[p]

KeepFrom(r) == [p \in Peers |-> IF p \in DOMAIN r.keep THEN r.keep[p] ELSE keep[p]]

Quiet(r) ==
    /\ keep' = KeepFrom(r)
    /\ UNCHANGED <<C, ses, peerVars, budget, ghost>>

GoStep(r) ==
    CASE r.kind = "dialed" -> GoDial(r.peer, r.conn) /\ keep' = KeepFrom(r) /\ UNCHANGED ses
      [] r.kind = "accept" -> GoAccept(r.conn)
      [] r.kind \in {"frame", "closed"} ->
            InUse(r.conn) /\ r.end = GoEnd(r.conn) /\ FrameOK(r) /\ GoRecv(r.conn)
      [] r.kind \in {"reset", "tick"} /\ r.conn # 0 ->
            InUse(r.conn) /\ r.end = GoEnd(r.conn) /\ GoTimeout(r.conn)
      [] r.kind = "keep" -> GoSetKeep(r.peer, r.keepTo)
      [] r.kind = "disconnect" -> GoDisconnect(r.peer)
      [] OTHER -> Quiet(r)   \* connect, dial, dial-failed, a tick that closes nothing

TraceInit == Init /\ ti = 0

TraceNext ==
    \/ /\ ti < Len(Trace)
       /\ \/ EnvDial(FreeSlots) /\ UNCHANGED ti
          \/ EnvOther /\ UNCHANGED ti
          \/ \E r \in {Trace[ti + 1]} : GoStep(r) /\ Matches(r) /\ ti' = ti + 1
    \/ ti = Len(Trace) /\ UNCHANGED TVars

TraceNotReplayed == ti < Len(Trace)
\* The Go node's safety along the trace (the 0.4.1 nodes' own defects, see
\* tla/README.md, may break the two-end properties in the environment's
\* branches, whatever Go does).
TraceSafety == GoAtMostOne /\ NoProtocolError
=============================================================================
