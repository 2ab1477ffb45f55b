------------------------------ MODULE Reliable ------------------------------
(***************************************************************************)
(* Reliable sessions (issue 9, tla/README.md "Reliable sessions"): the     *)
(* two streams of a pair of incarnations, numbered DATA, cumulative ACKs,  *)
(* a resend buffer, RESUME when a session replaces another, and the report *)
(* of unacknowledged messages when the peer's incarnation changes.         *)
(*                                                                         *)
(* Two nodes, 1 and 2.  The handshake itself is Masterless.tla; here it is *)
(* abstracted to what this layer relies on: connections are numbered in    *)
(* the order they are dialed, and an end adopts a connection as its        *)
(* session only if it is newer than every session it adopted before        *)
(* (closing the older ones).  Each connection k has one FIFO channel per   *)
(* direction, ch[n] holding the frames n sent.  A connection dies (Drop:   *)
(* every frame on it is lost); each end notices that, or that the other    *)
(* end closed it, at its own time.  An end receives only on its current    *)
(* session: frames on a connection it closed are dropped.                  *)
(*                                                                         *)
(* Each end of a new connection sends RESUME(inc, pinc, delivered) as its  *)
(* first frame (JOIN/WELCOME fields in the real handshake) at any time     *)
(* before it adopts it, so the value may be stale: the end still receives  *)
(* on its old session until it adopts.  A sender sends no DATA on a        *)
(* session before it has the peer's RESUME; then it resends, in order,     *)
(* every buffered message above what the peer reported, then new ones.     *)
(*                                                                         *)
(* Variant selects the protocol:                                           *)
(*   "correct"      the protocol of tla/README.md                          *)
(*   "noresend"     negative control: RESUME does not rewind the sender;   *)
(*                  it goes on after what it sent on the old session       *)
(*   "nodedup"      negative control: the receiver delivers a DATA whose   *)
(*                  seq it has already delivered                           *)
(*   "dropbuf"      negative control: the sender empties its resend buffer *)
(*                  when its session ends (as if everything was acked)     *)
(*   "noresumeinc"  negative control: RESUME's delivered is used even when *)
(*                  it refers to an older incarnation of the receiver      *)
(*   "noreport"     negative control: when the peer restarted, the sender  *)
(*                  resets its stream without reporting the unacknowledged *)
(*                  messages lost                                          *)
(*   "noreack"      negative control: a duplicate DATA is dropped without  *)
(*                  acknowledging it again                                 *)
(***************************************************************************)
EXTENDS Integers, Sequences, FiniteSets, TLC

CONSTANTS
    Msgs1, Msgs2,   \* messages the application of node 1, 2 sends (Send calls), in total
    MaxDrops,       \* connections that die (all frames in flight lost), in total
    MaxDups,        \* duplicate dials (a new connection while one exists), in total
    MaxRestarts,    \* crash+restart steps of node Restarter (0 or 1)
    Restarter,      \* the node that may restart
    Variant

ASSUME Variant \in {"correct", "noresend", "nodedup", "dropbuf", "noresumeinc",
                    "noreport", "noreack"}
ASSUME Restarter \in {1, 2} /\ MaxRestarts \in Nat /\ Msgs1 \in Nat /\ Msgs2 \in Nat

Nodes == {1, 2}
Peer(n) == 3 - n
Max(a, b) == IF a > b THEN a ELSE b

\* Every connection after the first is due to a drop, a duplicate dial or a
\* restart (a redial happens only when no connection is open at both ends).
MaxConns == 1 + MaxDrops + MaxDups + MaxRestarts
Conns == 1..MaxConns
OpenSt == {"hs", "rs", "up"}   \* handshake, RESUME sent, adopted (session)

VARIABLES
    conn,       \* [Conns -> connection]: st[n], ch[n] (frames sent by n), got[n]
                \* (n has the peer's RESUME), dead (the connection is broken)
    nc,         \* connections dialed so far (conn[1..nc] are used)
    inc,        \* inc[n]: incarnation of n
    pinc,       \* pinc[n]: incarnation of the peer n's streams refer to (0: unknown)
    cur,        \* cur[n]: n's session (a connection it adopted), 0 if none
    last,       \* last[n]: newest connection n ever adopted
    nxt,        \* nxt[n]: messages accepted in n's outgoing stream (seqs 1..nxt)
    ack,        \* ack[n]: cumulative ack of n's stream (buffer: ack+1..nxt)
    snt,        \* snt[n]: last seq sent on the current session
    dlv,        \* dlv[n]: last seq of the peer's stream delivered by n
    base,       \* ghost: base[n] + seq is the id of a message of n's stream
    acc,        \* ghost: ids <<sender, its inc, number>> accepted by Send
    dlog,       \* ghost: dlog[n]: <<seq, id>> delivered by n, this stream
    dids,       \* ghost: <<id, receiver, receiver inc>> ever delivered
    rep,        \* ghost: ids reported lost to their sender
    gap,        \* ghost: a DATA with seq > delivered + 1 arrived
    budget      \* what is left of the bounded environment events

vars == <<conn, nc, inc, pinc, cur, last, nxt, ack, snt, dlv, base, acc, dlog,
          dids, rep, gap, budget>>

\* Frames: t, a, b, c.
F(t, a, b, c) == [t |-> t, a |-> a, b |-> b, c |-> c]
\* RESUME: my incarnation, the incarnation of yours my counter refers to,
\* the last seq of your stream I delivered.
Resume(i, pi, d) == F("RESUME", i, pi, d)
\* DATA: seq; ghost: message number and sender incarnation (the id).
Data(q, g, si) == F("DATA", q, g, si)
\* ACK: cumulative, the last seq delivered.
Ack(a) == F("ACK", a, 0, 0)

FreeConn == [st |-> [n \in Nodes |-> "none"], ch |-> [n \in Nodes |-> <<>>],
             got |-> [n \in Nodes |-> FALSE], dead |-> FALSE]

Send(cv, k, n, f) ==
    IF cv[k].dead \/ cv[k].st[Peer(n)] = "closed" THEN cv
    ELSE [cv EXCEPT ![k].ch[n] = Append(@, f)]

\* n closes its end of k: what is in flight towards n is dropped; what n
\* sent may still be read by the peer until it closes too.
CloseEnd(cv, k, n) ==
    [cv EXCEPT ![k].st[n] = "closed", ![k].ch[Peer(n)] = <<>>, ![k].got[n] = FALSE]

\* The sender's ack when its session ends.
AckAfterLoss(n) == IF Variant = "dropbuf" THEN nxt[n] ELSE ack[n]

Id(n, q) == <<n, inc[n], base[n] + q>>

-----------------------------------------------------------------------------

Init ==
    /\ conn = [k \in Conns |-> FreeConn]
    /\ nc = 0
    /\ inc = [n \in Nodes |-> 1]
    /\ pinc = [n \in Nodes |-> 1]
    /\ cur = [n \in Nodes |-> 0]
    /\ last = [n \in Nodes |-> 0]
    /\ nxt = [n \in Nodes |-> 0]
    /\ ack = [n \in Nodes |-> 0]
    /\ snt = [n \in Nodes |-> 0]
    /\ dlv = [n \in Nodes |-> 0]
    /\ base = [n \in Nodes |-> 0]
    /\ acc = {}
    /\ dlog = [n \in Nodes |-> <<>>]
    /\ dids = {}
    /\ rep = {}
    /\ gap = FALSE
    /\ budget = [msgs |-> <<Msgs1, Msgs2>>, drops |-> MaxDrops,
                 dups |-> MaxDups, restarts |-> MaxRestarts]

\* The application of n sends a message: it enters the stream and the buffer.
Accept(n) ==
    /\ budget.msgs[n] > 0
    /\ budget' = [budget EXCEPT !.msgs[n] = @ - 1]
    /\ nxt' = [nxt EXCEPT ![n] = @ + 1]
    /\ acc' = acc \cup {Id(n, nxt[n] + 1)}
    /\ UNCHANGED <<conn, nc, inc, pinc, cur, last, ack, snt, dlv, base, dlog, dids,
                   rep, gap>>

Open2(k) == ~conn[k].dead /\ \A n \in Nodes : conn[k].st[n] \in OpenSt

NewConn ==
    /\ Assert(nc < MaxConns, "connections exhausted: MaxConns too small")
    /\ conn' = [conn EXCEPT ![nc + 1] = [FreeConn EXCEPT !.st = [n \in Nodes |-> "hs"]]]
    /\ nc' = nc + 1

RedialDue == ~\E k \in Conns : Open2(k)

\* The kept pair has no connection open at both ends: one of them dials.
Redial ==
    /\ RedialDue
    /\ NewConn
    /\ UNCHANGED <<inc, pinc, cur, last, nxt, ack, snt, dlv, base, acc, dlog, dids,
                   rep, gap, budget>>

\* A duplicate dial: a new connection at any time; once adopted it
\* replaces the session (the old one is closed as replaced).
DupDial ==
    /\ budget.dups > 0
    /\ budget' = [budget EXCEPT !.dups = @ - 1]
    /\ NewConn
    /\ UNCHANGED <<inc, pinc, cur, last, nxt, ack, snt, dlv, base, acc, dlog, dids,
                   rep, gap>>

\* End n of the new connection k sends its RESUME (JOIN or WELCOME).
SendResume(n, k) ==
    /\ conn[k].st[n] = "hs" /\ ~conn[k].dead /\ k > last[n]
    /\ conn' = Send([conn EXCEPT ![k].st[n] = "rs"], k, n, Resume(inc[n], pinc[n], dlv[n]))
    /\ UNCHANGED <<nc, inc, pinc, cur, last, nxt, ack, snt, dlv, base, acc, dlog, dids,
                   rep, gap, budget>>

\* n adopts k as its session, closing every older connection it has open
\* (its old session is replaced: frames in flight towards n on it are lost).
Adopt(n, k) ==
    /\ conn[k].st[n] = "rs" /\ k > last[n]
    /\ conn' = [j \in Conns |->
                  IF j = k THEN [conn[k] EXCEPT !.st[n] = "up"]
                  ELSE IF j < k /\ conn[j].st[n] \in OpenSt THEN CloseEnd(conn, j, n)[j]
                  ELSE conn[j]]
    /\ cur' = [cur EXCEPT ![n] = k]
    /\ last' = [last EXCEPT ![n] = k]
    /\ ack' = IF cur[n] # 0 THEN [ack EXCEPT ![n] = AckAfterLoss(n)] ELSE ack
    /\ UNCHANGED <<nc, inc, pinc, nxt, snt, dlv, base, acc, dlog, dids, rep, gap, budget>>

\* n notices that k is broken or closed by the peer (RST, FIN, BYE, or the
\* peer timeout) and closes its end; frames in flight towards n are lost.
Notice(n, k) ==
    /\ conn[k].st[n] \in OpenSt
    /\ conn[k].dead \/ conn[k].st[Peer(n)] = "closed"
    /\ conn' = CloseEnd(conn, k, n)
    /\ cur' = IF cur[n] = k THEN [cur EXCEPT ![n] = 0] ELSE cur
    /\ ack' = IF cur[n] = k THEN [ack EXCEPT ![n] = AckAfterLoss(n)] ELSE ack
    /\ UNCHANGED <<nc, inc, pinc, last, nxt, snt, dlv, base, acc, dlog, dids, rep, gap,
                   budget>>

\* Connection k dies: every frame in flight on it is lost.
Drop(k) ==
    /\ budget.drops > 0 /\ Open2(k)
    /\ budget' = [budget EXCEPT !.drops = @ - 1]
    /\ conn' = [conn EXCEPT ![k].dead = TRUE, ![k].ch = [n \in Nodes |-> <<>>]]
    /\ UNCHANGED <<nc, inc, pinc, cur, last, nxt, ack, snt, dlv, base, acc, dlog, dids,
                   rep, gap>>

\* n sends the next DATA of its stream on its session (a resent one or a
\* new one), once it has the peer's RESUME there.
SendData(n) ==
    LET k == cur[n] IN
    /\ k # 0 /\ conn[k].got[n] /\ snt[n] < nxt[n]
    /\ conn' = Send(conn, k, n, Data(snt[n] + 1, base[n] + snt[n] + 1, inc[n]))
    /\ snt' = [snt EXCEPT ![n] = @ + 1]
    /\ UNCHANGED <<nc, inc, pinc, cur, last, nxt, ack, dlv, base, acc, dlog, dids, rep,
                   gap, budget>>

\* RESUME(i, pi, d) at n on its session k.
OnResume(cv, n, k, f) ==
    LET restarted == pinc[n] # 0 /\ f.a > pinc[n]
        r == IF f.b = inc[n] \/ Variant = "noresumeinc" THEN f.c ELSE 0
        a == Max(ack[n], r)
    IN
    /\ conn' = [cv EXCEPT ![k].got[n] = TRUE]
    /\ pinc' = [pinc EXCEPT ![n] = f.a]
    /\ IF restarted THEN
          \* the peer restarted: report the unacknowledged messages lost and
          \* start both streams afresh
          /\ rep' = IF Variant = "noreport" THEN rep
                    ELSE rep \cup {Id(n, q) : q \in ack[n] + 1 .. nxt[n]}
          /\ base' = [base EXCEPT ![n] = @ + nxt[n]]
          /\ nxt' = [nxt EXCEPT ![n] = 0]
          /\ ack' = [ack EXCEPT ![n] = 0]
          /\ snt' = [snt EXCEPT ![n] = 0]
          /\ dlv' = [dlv EXCEPT ![n] = 0]
          /\ dlog' = [dlog EXCEPT ![n] = <<>>]
       ELSE
          \* drop what the peer has, resend the rest from there
          /\ ack' = [ack EXCEPT ![n] = a]
          /\ snt' = [snt EXCEPT ![n] = IF Variant = "noresend" THEN Max(@, a) ELSE a]
          /\ UNCHANGED <<rep, base, nxt, dlv, dlog>>
    /\ UNCHANGED <<gap>>

\* DATA(q) at n on its session k: deliver the next one, drop (and re-ack)
\* a duplicate, record a gap.
OnData(cv, n, k, f) ==
    LET id == <<Peer(n), f.c, f.b>>
        q == f.a
    IN
    CASE q <= dlv[n] ->
            /\ conn' = IF Variant = "noreack" THEN cv ELSE Send(cv, k, n, Ack(dlv[n]))
            /\ IF Variant = "nodedup"
               THEN /\ dlog' = [dlog EXCEPT ![n] = Append(@, <<q, id>>)]
                    /\ dids' = dids \cup {<<id, n, inc[n]>>}
               ELSE UNCHANGED <<dlog, dids>>
            /\ UNCHANGED <<dlv, gap>>
      [] q = dlv[n] + 1 ->
            /\ conn' = Send(cv, k, n, Ack(q))
            /\ dlv' = [dlv EXCEPT ![n] = q]
            /\ dlog' = [dlog EXCEPT ![n] = Append(@, <<q, id>>)]
            /\ dids' = dids \cup {<<id, n, inc[n]>>}
            /\ UNCHANGED gap
      [] OTHER ->
            /\ conn' = cv
            /\ gap' = TRUE
            /\ UNCHANGED <<dlv, dlog, dids>>

\* n processes the next frame on its session.
Recv(n) ==
    LET k == cur[n]
        p == Peer(n)
        f == Head(conn[k].ch[p])
        cv == [conn EXCEPT ![k].ch[p] = Tail(@)]
    IN
    /\ k # 0 /\ conn[k].ch[p] # <<>>
    /\ CASE f.t = "RESUME" ->
              OnResume(cv, n, k, f) /\ UNCHANGED <<dids>>
         [] f.t = "DATA" ->
              OnData(cv, n, k, f) /\ UNCHANGED <<pinc, nxt, ack, snt, base, rep>>
         [] f.t = "ACK" ->
              LET a == Max(ack[n], f.a) IN
              /\ conn' = cv
              /\ ack' = [ack EXCEPT ![n] = a]
              /\ snt' = [snt EXCEPT ![n] = Max(@, a)]   \* acked: not resent
              /\ UNCHANGED <<pinc, nxt, dlv, base, dlog, dids, rep, gap>>
    /\ UNCHANGED <<nc, inc, cur, last, acc, budget>>

\* Restarter crashes and restarts as a new incarnation: every end it has is
\* gone with what was in flight on it; its streams start afresh and it does
\* not know the peer's incarnation until the next RESUME.
Restart(n) ==
    /\ n = Restarter /\ budget.restarts > 0
    /\ budget' = [budget EXCEPT !.restarts = @ - 1]
    /\ conn' = [j \in Conns |->
                  IF conn[j].st[n] \in OpenSt
                  THEN [conn[j] EXCEPT !.st[n] = "closed", !.got[n] = FALSE, !.dead = TRUE,
                                       !.ch = [m \in Nodes |-> <<>>]]
                  ELSE conn[j]]
    /\ inc' = [inc EXCEPT ![n] = @ + 1]
    /\ pinc' = [pinc EXCEPT ![n] = 0]
    /\ cur' = [cur EXCEPT ![n] = 0]
    /\ nxt' = [nxt EXCEPT ![n] = 0]
    /\ ack' = [ack EXCEPT ![n] = 0]
    /\ snt' = [snt EXCEPT ![n] = 0]
    /\ dlv' = [dlv EXCEPT ![n] = 0]
    /\ base' = [base EXCEPT ![n] = 0]
    /\ dlog' = [dlog EXCEPT ![n] = <<>>]
    /\ UNCHANGED <<nc, last, acc, dids, rep, gap>>

-----------------------------------------------------------------------------
(* Properties *)

\* No DATA ever arrives beyond the next expected seq.
NoGap == ~gap

\* Each receiver has delivered exactly seqs 1..dlv of the current stream, in
\* order, once each, and they are the sender's messages in the order it
\* accepted them.
ExactlyOnceInOrder ==
    \A n \in Nodes :
        LET L == dlog[n] IN
        /\ Len(L) = dlv[n]
        /\ \A x \in 1..Len(L) :
              /\ L[x][1] = x
              /\ L[x][2] \in acc
              /\ L[x][2][1] = Peer(n)
              /\ L[x][2][2] = L[1][2][2]
              /\ L[x][2][3] = L[1][2][3] + x - 1

\* The sender's counters stay ordered: acked <= sent <= accepted.
Sane == \A n \in Nodes : ack[n] <= snt[n] /\ snt[n] <= nxt[n]

DeliveredIds == {d[1] : d \in dids}

\* A message reported lost was delivered, if at all, only to a receiver
\* incarnation that has since died (it never reaches a live application).
ReportedOnlyIfReceiverDied ==
    \A d \in dids : d[1] \in rep => d[3] # inc[d[2]]

\* The strict form: never both delivered and reported.  It does NOT hold:
\* a receiver can deliver, then crash before its ACK arrives (kept as a
\* documented fact, neg/RelBoth.cfg).
NeverBoth == DeliveredIds \cap rep = {}

\* Nothing in flight, one session up and resumed at both ends, every
\* message sent and acknowledged, no other connection open anywhere.
Quiescent ==
    \E k \in Conns :
        /\ cur[1] = k /\ cur[2] = k /\ Open2(k)
        /\ \A n \in Nodes : conn[k].got[n] /\ snt[n] = nxt[n] /\ ack[n] = nxt[n]
        /\ \A j \in Conns, n \in Nodes :
              /\ conn[j].ch[n] = <<>>
              /\ j # k => conn[j].st[n] \in {"none", "closed"}

\* A message whose sender incarnation still runs is delivered or reported.
Settled(x) == x \in DeliveredIds \/ x \in rep \/ x[2] # inc[x[1]]

\* Once quiescent, no accepted message has vanished.
NoneVanishes == Quiescent => \A x \in acc : Settled(x)

\* Liveness: every accepted message is eventually delivered (or reported
\* lost, or its sender died).  Settled is stable and Send calls are
\* bounded, so this is "each accepted x ~> Settled(x)", cheaper for TLC.
EventuallyDelivered == <>[](\A x \in acc : Settled(x))

-----------------------------------------------------------------------------

\* Explicit end: only a state with no enabled step and not Quiescent is a
\* deadlock (something accepted that no step can move).
Done == Quiescent /\ UNCHANGED vars

Next ==
    \/ \E n \in Nodes :
          \/ Accept(n) \/ SendData(n) \/ Recv(n) \/ Restart(n)
          \/ \E k \in Conns : SendResume(n, k) \/ Adopt(n, k) \/ Notice(n, k)
    \/ Redial
    \/ DupDial
    \/ \E k \in Conns : Drop(k)
    \/ Done

Spec == Init /\ [][Next]_vars

\* Faults and user calls are not fair (and bounded); everything else is.
Fairness ==
    /\ WF_vars(Redial)
    /\ \A n \in Nodes :
          /\ WF_vars(SendData(n)) /\ WF_vars(Recv(n))
          /\ \A k \in Conns : WF_vars(SendResume(n, k)) /\ WF_vars(Adopt(n, k))
                              /\ WF_vars(Notice(n, k))

LiveSpec == Spec /\ Fairness
=============================================================================
