------------------------------ MODULE GoLegacy ------------------------------
(***************************************************************************)
(* The rules of a masterless-go node for connections that speak masterless *)
(* 0.4.1 (fsm/legacy.go and legacyTransitions in fsm/table.go;             *)
(* spec/LEGACY-0.4.1.md sections 11.2-11.4; PROTOCOL.md, appendix), next   *)
(* to the peers it meets there: real 0.4.1 nodes, whose behaviour is the   *)
(* environment and is modelled from their source as in Masterless041.tla   *)
(* (one outgoing state ls/lp and one incoming state rs/rp per peer, the    *)
(* stream it uses, [KEEP] and the discard rule, reconnect once).           *)
(*                                                                         *)
(* One Go node G; Peers are 0.4.1 nodes, each meeting only G.  Ids are     *)
(* integers (G's rule for a crossed pair compares them).  Every TCP        *)
(* connection is a slot with a dialer end "d" and an acceptor end "a" and  *)
(* one FIFO channel per direction; a close appends FIN (0.4.1 has no BYE;  *)
(* Go's BYE encodes to nothing).  Messages, 0.4.1's names (Go's frames):   *)
(* ID {"id"} (HELLO), PRIO p {"priority":p} (JOIN), CONFIRM (WELCOME),      *)
(* KEEP k [k] (KEEP), DATA an object (DATA), FIN.  Heartbeats (`true`,     *)
(* PING) change no state on either side and are left out.                  *)
(*                                                                         *)
(* Priorities: 0 refuses; Min is Go's smallest positive number (5e-324),   *)
(* Rand = {2, 3} abstracts Math.random() in (0,1) (0.4.1 may tie with      *)
(* itself, never with Min), Max is 1 (what Go sends, and 0.4.1 when it     *)
(* does not cross).                                                        *)
(*                                                                         *)
(* Variant:                                                                *)
(*   "correct"  fsm/legacy.go                                              *)
(*   "norival"  negative control: Go's acceptor grants a JOIN without      *)
(*              comparing its priority with Go's own pending dial's        *)
(*              (onLegacyJoin without its legacyRival case)                *)
(***************************************************************************)
EXTENDS Integers, Sequences, FiniteSets, TLC

CONSTANTS
    G,              \* the Go node's id
    Peers,          \* the 0.4.1 nodes' ids
    GoKeeps,        \* Go keeps every peer at the start (it called Connect)
    PeerKeeps,      \* the keep flags a 0.4.1 node may start with ({TRUE}: it called keep)
    MaxGoDials,     \* Go dials (Connect, redials), in total
    MaxPeerDials,   \* 0.4.1 connect() calls, in total (its reconnects are free)
    MaxRestarts,    \* 0.4.1 crash+restart steps, in total
    MaxFaults,      \* timeouts of live connections, in total
    MaxUserOps,     \* Go's SetKeep/Disconnect calls, in total
    MaxPeerOps,     \* 0.4.1's keep/disconnect calls, in total
    MaxData,        \* DATA messages a 0.4.1 node sends, in total
    MaxConns,       \* connection slots
    Variant

ASSUME Variant \in {"correct", "norival"}
ASSUME G \in Int /\ Peers \subseteq Int /\ G \notin Peers /\ PeerKeeps \subseteq BOOLEAN

Nodes == Peers \cup {G}
Min == 1  Rand == {2, 3}  Max == 4
NC == 0  CONNECTING == 1  CONNECTED == 2

VARIABLES
    C,          \* [Slots -> connection record]
    ses,        \* Go: ses[p] the slot that is the session with p, or 0
    keep,       \* Go: keep[p]
    ls, lp, rs, rp, stream,  \* 0.4.1 node p's record of G (lib/masterless.js Node)
    kept,       \* 0.4.1: p keeps G (_keep)
    keeping,    \* 0.4.1: G keeps p, as p last heard ([KEEP])
    rc,         \* 0.4.1: p reconnects to G (once)
    budget,
    ghost       \* "proto": a message arrived in a state that does not allow it

vars == <<C, ses, keep, ls, lp, rs, rp, stream, kept, keeping, rc, budget, ghost>>
peerVars == <<ls, lp, rs, rp, stream, kept, keeping, rc>>
goVars == <<ses, keep>>

Slots == 1..MaxConns
E == {"d", "a"}
Other(e) == IF e = "d" THEN "a" ELSE "d"
Msg(t, p) == [t |-> t, p |-> p]
FIN == Msg("FIN", 0)

\* pr: the priority Go sent on a connection it dialed; pk: the peer's keep
\* flag as Go last heard it on this connection (0.4.1's default is TRUE).
FreeConn == [d |-> 0, a |-> 0, st |-> [e \in E |-> "free"], ch |-> [e \in E |-> <<>>],
             pr |-> 0, pk |-> TRUE]
NodeOf(c, e) == IF e = "d" THEN C[c].d ELSE C[c].a
PeerOf(c, e) == NodeOf(c, Other(e))
GoEnd(c) == IF C[c].d = G THEN "d" ELSE "a"
PeerEnd(c) == Other(GoEnd(c))
PeerAt(c) == PeerOf(c, GoEnd(c))          \* the 0.4.1 node of slot c
InUse(c) == C[c].st["d"] # "free"

Send(cv, c, e, m) ==
    IF cv[c].st[Other(e)] = "closed" THEN cv ELSE [cv EXCEPT ![c].ch[e] = Append(@, m)]
CloseEnd(cv, c, e) ==
    IF cv[c].st[Other(e)] = "closed" THEN [cv EXCEPT ![c] = FreeConn]
    ELSE [cv EXCEPT ![c].st[e] = "closed", ![c].ch[Other(e)] = <<>>,
                    ![c].ch[e] = Append(@, FIN)]
\* Received a FIN: this end closes too, nothing more to send.
Closed(cv, c, e) ==
    IF cv[c].st[Other(e)] = "closed" THEN [cv EXCEPT ![c] = FreeConn]
    ELSE [cv EXCEPT ![c].st[e] = "closed"]

Init ==
    /\ C = [c \in Slots |-> FreeConn]
    /\ ses = [p \in Peers |-> 0]
    /\ keep = [p \in Peers |-> GoKeeps]
    /\ ls = [p \in Peers |-> NC] /\ lp = [p \in Peers |-> 0]
    /\ rs = [p \in Peers |-> NC] /\ rp = [p \in Peers |-> 0]
    /\ stream = [p \in Peers |-> 0]
    /\ kept \in [Peers -> PeerKeeps]
    /\ keeping = [p \in Peers |-> TRUE]
    /\ rc = [p \in Peers |-> FALSE]
    /\ budget = [gdial |-> MaxGoDials, pdial |-> MaxPeerDials, restart |-> MaxRestarts,
                 fault |-> MaxFaults, user |-> MaxUserOps, peerop |-> MaxPeerOps, data |-> MaxData]
    /\ ghost = {}

FreeSlots == {c \in Slots : ~InUse(c)}
NewSlot == CHOOSE c \in FreeSlots : \A c2 \in FreeSlots : c <= c2
SlotsOK == Assert(FreeSlots # {}, "connection slots exhausted: raise MaxConns")

\* Go's open connections with p in state st, dialed by Go or accepted.
GoConns(p, st, dialed) ==
    {c \in Slots : InUse(c) /\ PeerAt(c) = p /\ C[c].st[GoEnd(c)] = st /\ (GoEnd(c) = "d") = dialed}

-----------------------------------------------------------------------------
(* The Go node (fsm/legacy.go). *)

\* Go dials p (Connect or a redial; at any time, bounded): HELLO goes at once.
GoDial(p, c) ==
    /\ budget.gdial > 0 /\ ~InUse(c)
    /\ C' = [C EXCEPT ![c] = [FreeConn EXCEPT !.d = G, !.a = p,
                 !.st = [e \in E |-> IF e = "d" THEN "hello" ELSE "pending"],
                 !.ch = [e \in E |-> IF e = "d" THEN <<Msg("ID", 0)>> ELSE <<>>]]]
    /\ budget' = [budget EXCEPT !.gdial = @ - 1]
    /\ UNCHANGED <<goVars, peerVars, ghost>>

\* A 0.4.1 acceptor (Go) writes nothing before the dialer's HELLO.
GoAccept(c) ==
    /\ InUse(c) /\ C[c].a = G /\ C[c].st["a"] = "pending"
    /\ C' = [C EXCEPT ![c].st["a"] = "hello"]
    /\ UNCHANGED <<goVars, peerVars, budget, ghost>>

\* Go closes its end of c (FIN); a session ends with it.
GoClose(cv, c) == CloseEnd(cv, c, GoEnd(c))
EndSes(c) == IF ses[PeerAt(c)] = c THEN [ses EXCEPT ![PeerAt(c)] = 0] ELSE ses

\* Established: the queued DATA (none here), then [KEEP] with Go's flag.
Establish(cv, c) ==
    /\ C' = Send([cv EXCEPT ![c].st[GoEnd(c)] = "est"], c, GoEnd(c), Msg("KEEP", keep[PeerAt(c)]))
    /\ ses' = [ses EXCEPT ![PeerAt(c)] = c]

\* legacyTransitions: what each state accepts (FIN is ConnClosed, any state).
GoAllows(st, t) ==
    \/ t = "FIN"
    \/ st = "hello" /\ t = "ID"
    \/ st = "join" /\ t = "PRIO"
    \/ st = "welcome" /\ t = "CONFIRM"
    \/ st = "est" /\ t \in {"KEEP", "DATA"}

GoRecv(c) ==
    LET e == GoEnd(c)
        p == PeerAt(c)
        st == C[c].st[e]
        m == Head(C[c].ch[Other(e)])
        cv == [C EXCEPT ![c].ch[Other(e)] = Tail(@)]
        dup == GoClose(cv, c)         \* legacyDuplicate: a bare FIN
    IN
    /\ InUse(c) /\ st \in {"hello", "join", "welcome", "est"}
    /\ C[c].ch[Other(e)] # <<>>
    /\ UNCHANGED <<peerVars, budget>>
    /\ IF ~GoAllows(st, m.t)
       THEN C' = dup /\ ses' = EndSes(c) /\ ghost' = ghost \cup {"proto"} /\ UNCHANGED keep
       ELSE
       /\ UNCHANGED ghost
       /\ CASE m.t = "FIN" ->
                 C' = Closed(cv, c, e) /\ ses' = EndSes(c) /\ UNCHANGED keep
            [] st = "hello" /\ e = "a" ->    \* onLegacyHello, we accepted
                 /\ UNCHANGED <<ses, keep>>
                 /\ IF \/ ses[p] # 0
                       \/ GoConns(p, "join", FALSE) # {}
                       \/ GoConns(p, "welcome", TRUE) # {}
                    THEN C' = dup
                    ELSE C' = Send([cv EXCEPT ![c].st[e] = "join"], c, e, Msg("ID", 0))
            [] st = "hello" /\ e = "d" ->    \* onLegacyHello, we dialed
                 /\ UNCHANGED <<ses, keep>>
                 /\ IF ses[p] # 0 THEN C' = dup
                    ELSE LET pr == IF GoConns(p, "join", FALSE) # {} /\ G < p THEN Min ELSE Max
                         IN C' = Send([cv EXCEPT ![c].st[e] = "welcome", ![c].pr = pr], c, e, Msg("PRIO", pr))
            [] st = "join" ->                \* onLegacyJoin
                 /\ UNCHANGED keep
                 /\ IF \/ ses[p] # 0
                       \/ m.p = 0
                       \/ Variant = "correct" /\ \E x \in GoConns(p, "welcome", TRUE) : m.p < C[x].pr
                    THEN C' = dup /\ UNCHANGED ses
                    ELSE Establish(Send(cv, c, e, Msg("CONFIRM", 0)), c)
            [] st = "welcome" ->             \* onLegacyWelcome
                 /\ UNCHANGED keep
                 /\ IF ses[p] # 0 THEN C' = dup /\ UNCHANGED ses
                    ELSE Establish(cv, c)
            [] m.t = "KEEP" ->               \* onLegacyKeep: discard if neither keeps
                 /\ UNCHANGED keep
                 /\ IF ~keep[p] /\ ~m.p
                    THEN C' = GoClose([cv EXCEPT ![c].pk = m.p], c) /\ ses' = EndSes(c)
                    ELSE C' = [cv EXCEPT ![c].pk = m.p] /\ UNCHANGED ses
            [] OTHER ->                      \* DATA: delivered, no state
                 C' = cv /\ UNCHANGED <<ses, keep>>

\* Dead: the far end closed and nothing is left to read.
Dead(c, e) == C[c].st[Other(e)] = "closed" /\ C[c].ch[Other(e)] = <<>>
Fault(c, e) ==
    IF Dead(c, e) THEN UNCHANGED budget
    ELSE budget.fault > 0 /\ budget' = [budget EXCEPT !.fault = @ - 1]

\* Go's handshake timeout, or its peer timeout on a session: Go closes.
GoTimeout(c) ==
    /\ InUse(c) /\ C[c].st[GoEnd(c)] \in {"hello", "join", "welcome", "est"}
    /\ Fault(c, GoEnd(c))
    /\ C' = GoClose(C, c)
    /\ ses' = EndSes(c)
    /\ UNCHANGED <<keep, peerVars, ghost>>

\* SetKeep on a session: [KEEP] first, then discard if neither keeps.
GoSetKeep(p, k) ==
    /\ budget.user > 0 /\ keep[p] # k
    /\ budget' = [budget EXCEPT !.user = @ - 1]
    /\ keep' = [keep EXCEPT ![p] = k]
    /\ LET s == ses[p]
           cv == IF s = 0 THEN C ELSE Send(C, s, GoEnd(s), Msg("KEEP", k))
       IN IF s # 0 /\ ~k /\ ~C[s].pk
          THEN C' = GoClose(cv, s) /\ ses' = [ses EXCEPT ![p] = 0]
          ELSE C' = cv /\ UNCHANGED ses
    /\ UNCHANGED <<peerVars, ghost>>

\* Disconnect: stop keeping; close every connection with p past its HELLO.
GoDisconnect(p) ==
    /\ budget.user > 0
    /\ keep[p] \/ \E c \in Slots : InUse(c) /\ PeerAt(c) = p /\ C[c].st[GoEnd(c)] \in {"join", "welcome", "est"}
    /\ budget' = [budget EXCEPT !.user = @ - 1]
    /\ keep' = [keep EXCEPT ![p] = FALSE]
    /\ ses' = [ses EXCEPT ![p] = 0]
    /\ LET Gone(c) == InUse(c) /\ PeerAt(c) = p /\ C[c].st[GoEnd(c)] \in {"join", "welcome", "est"}
       IN C' = [c \in Slots |->
                  IF ~Gone(c) THEN C[c]
                  ELSE IF C[c].st[PeerEnd(c)] = "closed" THEN FreeConn
                  ELSE [C[c] EXCEPT !.st[GoEnd(c)] = "closed", !.ch[PeerEnd(c)] = <<>>,
                                    !.ch[GoEnd(c)] = Append(@, FIN)]]
    /\ UNCHANGED <<peerVars, ghost>>

-----------------------------------------------------------------------------
(* The 0.4.1 nodes: the environment (lib/masterless.js, Masterless041.tla). *)

PeerDial(p, c) ==
    /\ ~InUse(c)
    /\ C' = [C EXCEPT ![c] = [FreeConn EXCEPT !.d = p, !.a = G,
                 !.st = [e \in E |-> IF e = "d" THEN "waitid" ELSE "pending"],
                 !.ch = [e \in E |-> IF e = "d" THEN <<Msg("ID", 0)>> ELSE <<>>]]]

\* connect(): bounded; reconnect(): once, after a lost session.
PeerConnect(p, c) ==
    /\ budget.pdial > 0 /\ PeerDial(p, c)
    /\ budget' = [budget EXCEPT !.pdial = @ - 1]
    /\ UNCHANGED <<goVars, peerVars, ghost>>
PeerRedial(p, c) ==
    /\ rc[p] /\ PeerDial(p, c)
    /\ rc' = [rc EXCEPT ![p] = FALSE]
    /\ UNCHANGED <<goVars, ls, lp, rs, rp, stream, kept, keeping, budget, ghost>>

PeerAccept(c) ==
    /\ InUse(c) /\ C[c].d = G /\ C[c].st["a"] = "pending"
    /\ C' = [C EXCEPT ![c].st["a"] = "waitid"]
    /\ UNCHANGED <<goVars, peerVars, budget, ghost>>

\* After the handshake: the stream, then [KEEP] (onhandshake, L993-1005).
PeerEst(cv, c, p) ==
    /\ C' = Send([cv EXCEPT ![c].st[PeerEnd(c)] = "est"], c, PeerEnd(c), Msg("KEEP", kept[p]))
    /\ stream' = [stream EXCEPT ![p] = c]

\* Forget the record of G (delete the Node: disconnect, discard).
Forget(p) ==
    /\ ls' = [ls EXCEPT ![p] = NC] /\ lp' = [lp EXCEPT ![p] = 0]
    /\ rs' = [rs EXCEPT ![p] = NC] /\ rp' = [rp EXCEPT ![p] = 0]
    /\ stream' = [stream EXCEPT ![p] = 0] /\ keeping' = [keeping EXCEPT ![p] = TRUE]

\* A session ended (onhandshake's end/close): reconnect if p keeps G, else forget.
LostSession(p, c) ==
    IF kept[p]
    THEN /\ stream' = [stream EXCEPT ![p] = IF @ = c THEN 0 ELSE @]
         /\ IF rs[p] = CONNECTED /\ C[c].a = p
            THEN rs' = [rs EXCEPT ![p] = NC] /\ rp' = [rp EXCEPT ![p] = 0] /\ UNCHANGED <<ls, lp>>
            ELSE ls' = [ls EXCEPT ![p] = NC] /\ lp' = [lp EXCEPT ![p] = 0] /\ UNCHANGED <<rs, rp>>
         /\ rc' = [rc EXCEPT ![p] = TRUE]
         /\ UNCHANGED keeping
    ELSE Forget(p) /\ UNCHANGED rc

\* What 0.4.1 reads in each phase without closing ("unexpected packet").
PeerAllows(st, t) ==
    \/ t = "FIN"
    \/ st = "waitid" /\ t = "ID"
    \/ st = "waitprio" /\ t = "PRIO"
    \/ st = "waitconfirm" /\ t = "CONFIRM"
    \/ st = "est" /\ t \in {"KEEP", "DATA"}

PeerRecv(c) ==
    LET e == PeerEnd(c)
        p == PeerAt(c)
        st == C[c].st[e]
        m == Head(C[c].ch[Other(e)])
        cv == [C EXCEPT ![c].ch[Other(e)] = Tail(@)]
    IN
    /\ InUse(c) /\ st \in {"waitid", "waitprio", "waitconfirm", "est"}
    /\ C[c].ch[Other(e)] # <<>>
    /\ UNCHANGED <<goVars, budget, kept>>
    /\ IF ~PeerAllows(st, m.t)
       THEN /\ ghost' = ghost \cup {"proto"}
            /\ C' = CloseEnd(cv, c, e)
            /\ IF st = "est" THEN LostSession(p, c) ELSE UNCHANGED <<ls, lp, rs, rp, stream, keeping, rc>>
       ELSE
       /\ UNCHANGED ghost
       /\ CASE m.t = "FIN" ->
                 /\ C' = Closed(cv, c, e)
                 /\ CASE st = "est" -> LostSession(p, c)
                      [] st = "waitconfirm" ->
                           ls' = [ls EXCEPT ![p] = NC] /\ lp' = [lp EXCEPT ![p] = 0]
                           /\ UNCHANGED <<rs, rp, stream, keeping, rc>>
                      [] st = "waitprio" ->
                           rs' = [rs EXCEPT ![p] = NC] /\ rp' = [rp EXCEPT ![p] = 0]
                           /\ UNCHANGED <<ls, lp, stream, keeping, rc>>
                      [] OTHER -> UNCHANGED <<ls, lp, rs, rp, stream, keeping, rc>>
            [] e = "d" /\ st = "waitid" ->     \* L546-630
                 CASE ls[p] # NC ->   \* duplicate outgoing: priority 0, FIN
                        /\ C' = CloseEnd(Send(cv, c, e, Msg("PRIO", 0)), c, e)
                        /\ UNCHANGED <<ls, lp, rs, rp, stream, keeping, rc>>
                   [] rs[p] = CONNECTED ->
                        /\ C' = CloseEnd(Send(cv, c, e, Msg("PRIO", 0)), c, e)
                        /\ ls' = [ls EXCEPT ![p] = NC] /\ lp' = [lp EXCEPT ![p] = 0]
                        /\ UNCHANGED <<rs, rp, stream, keeping, rc>>
                   [] OTHER ->
                        \E pr \in IF rs[p] = CONNECTING THEN Rand ELSE {Max} :
                           /\ C' = Send([cv EXCEPT ![c].st[e] = "waitconfirm"], c, e, Msg("PRIO", pr))
                           /\ ls' = [ls EXCEPT ![p] = CONNECTING]
                           /\ lp' = [lp EXCEPT ![p] = pr]
                           /\ UNCHANGED <<rs, rp, stream, keeping, rc>>
            [] e = "d" /\ st = "waitconfirm" ->   \* L631-654
                 /\ PeerEst(cv, c, p)
                 /\ ls' = [ls EXCEPT ![p] = CONNECTED] /\ lp' = [lp EXCEPT ![p] = Max]
                 /\ UNCHANGED <<rs, rp, keeping, rc>>
            [] e = "a" /\ st = "waitid" ->     \* L778-860
                 CASE rs[p] # NC ->   \* a second incoming: refused
                        C' = CloseEnd(cv, c, e) /\ UNCHANGED <<ls, lp, rs, rp, stream, keeping, rc>>
                   [] ls[p] # NC ->
                        /\ C' = CloseEnd(cv, c, e)
                        /\ UNCHANGED <<ls, lp, rs, rp, stream, keeping, rc>>
                   [] OTHER ->
                        /\ C' = Send([cv EXCEPT ![c].st[e] = "waitprio"], c, e, Msg("ID", 0))
                        /\ rs' = [rs EXCEPT ![p] = CONNECTING]
                        /\ UNCHANGED <<ls, lp, rp, stream, keeping, rc>>
            [] e = "a" /\ st = "waitprio" ->   \* L861-927: a tie confirms
                 IF ls[p] = CONNECTED \/ (ls[p] = CONNECTING /\ m.p < lp[p])
                 THEN /\ C' = CloseEnd(cv, c, e)
                      /\ rs' = [rs EXCEPT ![p] = NC] /\ rp' = [rp EXCEPT ![p] = 0]
                      /\ UNCHANGED <<ls, lp, stream, keeping, rc>>
                 ELSE /\ PeerEst(Send(cv, c, e, Msg("CONFIRM", 0)), c, p)
                      /\ rs' = [rs EXCEPT ![p] = CONNECTED] /\ rp' = [rp EXCEPT ![p] = Max]
                      /\ UNCHANGED <<ls, lp, keeping, rc>>
            [] m.t = "KEEP" ->                 \* L1044-1066: discard if neither keeps
                 IF ~kept[p] /\ ~m.p
                 THEN C' = CloseEnd(cv, c, e) /\ Forget(p) /\ UNCHANGED rc
                 ELSE /\ C' = cv /\ keeping' = [keeping EXCEPT ![p] = m.p]
                      /\ UNCHANGED <<ls, lp, rs, rp, stream, rc>>
            [] OTHER -> C' = cv /\ UNCHANGED <<ls, lp, rs, rp, stream, keeping, rc>>

\* Outgoing 0.4.1 connections time out in the handshake (5 s without its
\* own writes); incoming ones and sessions never do.  On error: reconnect
\* if no incoming connection, clear the direction.
PeerTimeout(c) ==
    LET p == PeerAt(c) st == C[c].st["d"] IN
    /\ InUse(c) /\ C[c].d = p /\ st \in {"waitid", "waitconfirm"}
    /\ Fault(c, "d")
    /\ C' = CloseEnd(C, c, "d")
    /\ IF st = "waitconfirm"
       THEN /\ ls' = [ls EXCEPT ![p] = NC] /\ lp' = [lp EXCEPT ![p] = 0]
            /\ rc' = IF rs[p] = NC THEN [rc EXCEPT ![p] = TRUE] ELSE rc
       ELSE UNCHANGED <<ls, lp, rc>>
    /\ UNCHANGED <<goVars, rs, rp, stream, kept, keeping, ghost>>

\* Server.keep(G, k): [k] on the stream, no check (L324-335).
PeerSetKeep(p, k) ==
    /\ budget.peerop > 0 /\ kept[p] # k
    /\ budget' = [budget EXCEPT !.peerop = @ - 1]
    /\ kept' = [kept EXCEPT ![p] = k]
    /\ C' = IF stream[p] # 0 THEN Send(C, stream[p], PeerEnd(stream[p]), Msg("KEEP", k)) ELSE C
    /\ UNCHANGED <<goVars, ls, lp, rs, rp, stream, keeping, rc, ghost>>

\* Server.disconnect(G) (L352-373): forget keeping G and the record of it,
\* FIN the stream (no message); handshakes are left alone.
PeerDisconnect(p) ==
    /\ budget.peerop > 0 /\ (kept[p] \/ stream[p] # 0)
    /\ budget' = [budget EXCEPT !.peerop = @ - 1]
    /\ kept' = [kept EXCEPT ![p] = FALSE]
    /\ C' = IF stream[p] # 0 /\ C[stream[p]].st[PeerEnd(stream[p])] = "est"
            THEN CloseEnd(C, stream[p], PeerEnd(stream[p])) ELSE C
    /\ Forget(p)
    /\ UNCHANGED <<goVars, rc, ghost>>

\* Server.send(G, obj) on the stream.
PeerData(p) ==
    /\ budget.data > 0 /\ stream[p] # 0
    /\ budget' = [budget EXCEPT !.data = @ - 1]
    /\ C' = Send(C, stream[p], PeerEnd(stream[p]), Msg("DATA", 0))
    /\ UNCHANGED <<goVars, peerVars, ghost>>

\* The 0.4.1 process dies (FIN on everything) and starts again; its
\* application keeps G as before, and connects again if it does.
PeerRestart(p) ==
    /\ budget.restart > 0
    /\ budget' = [budget EXCEPT !.restart = @ - 1]
    /\ LET Mine(c) == InUse(c) /\ PeerAt(c) = p /\ C[c].st[PeerEnd(c)] # "closed"
       IN C' = [c \in Slots |->
                  IF ~Mine(c) THEN C[c]
                  ELSE IF C[c].st[GoEnd(c)] = "closed" THEN FreeConn
                  ELSE [C[c] EXCEPT !.st[PeerEnd(c)] = "closed", !.ch[GoEnd(c)] = <<>>,
                                    !.ch[PeerEnd(c)] = Append(@, FIN)]]
    /\ Forget(p)
    /\ rc' = [rc EXCEPT ![p] = kept[p]]
    /\ UNCHANGED <<goVars, kept, ghost>>

-----------------------------------------------------------------------------

Live(c) == c # 0 /\ InUse(c) /\ \A e \in E : C[c].st[e] \notin {"closed", "free"}
GoEst(p) == {c \in Slots : InUse(c) /\ PeerAt(c) = p /\ C[c].st[GoEnd(c)] = "est"}
PeerEst041(p) == {c \in Slots : InUse(c) /\ PeerAt(c) = p /\ C[c].st[PeerEnd(c)] = "est"}

\* At Go, at most one session per 0.4.1 peer, and it is ses[p].
GoAtMostOne ==
    \A p \in Peers : GoEst(p) \subseteq {ses[p]} /\ (ses[p] # 0 => ses[p] \in GoEst(p))
\* At a 0.4.1 node, at most one session with G among the connections still
\* open at Go (a session Go has closed, its FIN in flight, is dead already).
PeerAtMostOne ==
    \A p \in Peers : Cardinality({c \in PeerEst041(p) : Live(c)}) <= 1
\* At each end, at most one session per pair.
AtMostOne ==
    GoAtMostOne /\ PeerAtMostOne
\* If both ends hold a session with each other and both are live, it is the
\* same connection.
Agreement ==
    \A p \in Peers : (Live(ses[p]) /\ Live(stream[p])) => ses[p] = stream[p]
NoProtocolError == "proto" \notin ghost

\* Nothing in flight, no handshake under way, no reconnect due.
Quiescent ==
    /\ \A c \in Slots : InUse(c) => \A e \in E : C[c].ch[e] = <<>> /\ C[c].st[e] = "est"
    /\ \A p \in Peers : ~rc[p]
\* When nothing is in flight, every pair that either end keeps has one live
\* session that both ends hold.
QuiescentAgreement ==
    Quiescent => \A p \in Peers :
        (keep[p] \/ kept[p]) /\ (\E c \in Slots : InUse(c) /\ PeerAt(c) = p) =>
            ses[p] = stream[p]
Done == Quiescent /\ UNCHANGED vars

GoNext ==
    \/ \E p \in Peers : budget.gdial > 0 /\ SlotsOK /\ GoDial(p, NewSlot)
    \/ \E c \in Slots : GoAccept(c) \/ GoRecv(c) \/ GoTimeout(c)
    \/ \E p \in Peers, k \in BOOLEAN : GoSetKeep(p, k)
    \/ \E p \in Peers : GoDisconnect(p)

\* A 0.4.1 node dials into one of the slots S.
EnvDial(S) == \E p \in Peers, c \in S : PeerConnect(p, c) \/ PeerRedial(p, c)
EnvOther ==
    \/ \E c \in Slots : PeerAccept(c) \/ PeerRecv(c) \/ PeerTimeout(c)
    \/ \E p \in Peers, k \in BOOLEAN : PeerSetKeep(p, k)
    \/ \E p \in Peers : PeerDisconnect(p) \/ PeerData(p) \/ PeerRestart(p)

EnvNext ==
    \/ (\E p \in Peers : budget.pdial > 0 \/ rc[p]) /\ SlotsOK /\ EnvDial({NewSlot})
    \/ EnvOther

Next == GoNext \/ EnvNext \/ Done

Spec == Init /\ [][Next]_vars
=============================================================================
