----------------------------- MODULE Masterless -----------------------------
(***************************************************************************)
(* The masterless v1 handshake (spec/PROTOCOL.md), one node step per       *)
(* action.  Nodes are integers: the greater id leads the pair.  Every TCP  *)
(* connection is a slot of C with two ends, "d" (dialer) and "a"           *)
(* (acceptor); ch[e] is the FIFO channel of frames sent by end e.  A close *)
(* appends BYE (which stands for BYE+FIN: the receiver closes on either),  *)
(* so the other end sees it after the frames already queued.  A slot is   *)
(* reused once both ends are closed (no end can refer to it any more).     *)
(*                                                                         *)
(* Variant selects the protocol:                                           *)
(*   "correct"      PROTOCOL.md                                            *)
(*   "dialerleads"  negative control: the dialer of each connection is its *)
(*                  leader (each end grants the connection it dialed)      *)
(*   "noinc"        negative control: restarts handled without             *)
(*                  incarnations (they are carried, never compared)        *)
(***************************************************************************)
EXTENDS Integers, Sequences, FiniteSets, TLC

CONSTANTS
    Nodes,          \* set of node ids (integers); the greater id leads a pair
    MaxConnects,    \* user Connect calls (each dials) per unordered pair
    MaxSelfDials,   \* dials of a node to itself, in total
    MaxRestarts,    \* crash+restart steps, in total
    MaxFaults,      \* timeouts of live (not dead) connections, in total
    MaxUserOps,     \* Disconnect and Keep calls, in total
    MaxConns,       \* connection slots (only a bound on simultaneous connections)
    LoseFin,        \* TRUE: a crashed node's FINs never arrive (host crash)
    Variant

ASSUME Variant \in {"correct", "dialerleads", "noinc"}
ASSUME Nodes \subseteq Int /\ MaxConns \in Nat \ {0}

VARIABLES
    C,          \* [Slots -> connection record]
    inc,        \* inc[n]: incarnation of node n (1, 2, ...)
    keep,       \* keep[n][m]: n's user keeps m
    ses,        \* ses[n][m]: the slot n holds as its session with m, or 0
    ctr,        \* ctr[n]: session counter of n as a leader (this incarnation)
    fInc,       \* fInc[n][m]: leader incarnation fCl[n][m] refers to (follower n)
    fCl,        \* fCl[n][m]: greatest sess of that incarnation n held and closed
    budget,     \* what is left of the bounded environment events
    ghost       \* set of flags: "proto" (a frame not allowed in its state),
                \* "slowrestart" (a new incarnation refused because of an old one)

vars == <<C, inc, keep, ses, ctr, fInc, fCl, budget, ghost>>

Slots == 1..MaxConns
E == {"d", "a"}
Other(e) == IF e = "d" THEN "a" ELSE "d"
Pairs == {{n, m} : n, m \in Nodes} \ {{n} : n \in Nodes}
Open == {"pending", "hello", "join", "welcome", "est"}
Handshake == {"pending", "hello", "join", "welcome"}

\* Frames have one shape: t, x (inc of HELLO, closed of JOIN, sess of
\* WELCOME), k (keep of JOIN, WELCOME, KEEP).
Msg(t, x, k) == [t |-> t, x |-> x, k |-> k]
Hello(i) == Msg("HELLO", i, FALSE)
Join(cl, k) == Msg("JOIN", cl, k)
Welcome(s, k) == Msg("WELCOME", s, k)
KeepF(k) == Msg("KEEP", 0, k)
Bye == Msg("BYE", 0, FALSE)

FreeConn == [d |-> 0, a |-> 0,
             st |-> [e \in E |-> "free"], pinc |-> [e \in E |-> 0],
             sess |-> [e \in E |-> 0], pk |-> [e \in E |-> FALSE],
             sk |-> [e \in E |-> FALSE], ch |-> [e \in E |-> <<>>]]

NodeOf(c, e) == IF e = "d" THEN C[c].d ELSE C[c].a
PeerOf(c, e) == NodeOf(c, Other(e))
\* The end of slot c at node n (sessions are never self-connections).
EndAt(n, c) == IF C[c].d = n THEN "d" ELSE "a"

\* Which end leads connection c (computed identically at both ends).
Leads(c, e) ==
    IF Variant = "dialerleads" THEN e = "d" ELSE NodeOf(c, e) > PeerOf(c, e)

-----------------------------------------------------------------------------
(* Operators on a value cv of C. *)

Send(cv, c, e, m) ==
    IF cv[c].st[Other(e)] = "closed" THEN cv   \* the peer's socket is gone
    ELSE [cv EXCEPT ![c].ch[e] = Append(@, m)]

\* End e of c closes; bye: the other end learns it (BYE/FIN after queued frames).
CloseEnd(cv, c, e, bye) ==
    IF cv[c].st[Other(e)] = "closed" THEN [cv EXCEPT ![c] = FreeConn]
    ELSE [cv EXCEPT ![c].st[e] = "closed",
                    ![c].pinc[e] = 0, ![c].sess[e] = 0, ![c].pk[e] = FALSE,
                    ![c].sk[e] = FALSE, ![c].ch[Other(e)] = <<>>,
                    ![c].ch[e] = IF bye THEN Append(@, Bye) ELSE @]

\* Follower bookkeeping when n closes its session end of c with leader m.
FclAfter(n, m, c, e) ==
    IF C[c].st[e] = "est" /\ ~Leads(c, e)
       /\ (Variant = "noinc" \/ C[c].pinc[e] = fInc[n][m])
       /\ C[c].sess[e] > fCl[n][m]
    THEN [fCl EXCEPT ![n][m] = C[c].sess[e]]
    ELSE fCl

\* n closes end e of c (base value cv, with BYE) and forgets it as a session.
CloseStep(cv, n, c, e) ==
    LET m == PeerOf(c, e) IN
    /\ C' = CloseEnd(cv, c, e, TRUE)
    /\ ses' = IF ses[n][m] = c THEN [ses EXCEPT ![n][m] = 0] ELSE ses
    /\ fCl' = IF ses[n][m] = c THEN FclAfter(n, m, c, e) ELSE fCl

-----------------------------------------------------------------------------

Init ==
    /\ C = [c \in Slots |-> FreeConn]
    /\ inc = [n \in Nodes |-> 1]
    /\ keep = [n \in Nodes |-> [m \in Nodes |-> FALSE]]
    /\ ses = [n \in Nodes |-> [m \in Nodes |-> 0]]
    /\ ctr = [n \in Nodes |-> 0]
    /\ fInc = [n \in Nodes |-> [m \in Nodes |-> 0]]
    /\ fCl = [n \in Nodes |-> [m \in Nodes |-> 0]]
    /\ budget = [connect |-> [p \in Pairs |-> MaxConnects], self |-> MaxSelfDials,
                 restart |-> MaxRestarts, fault |-> MaxFaults,
                 user |-> MaxUserOps]
    /\ ghost = {}

FreeSlots == {c \in Slots : C[c].st["d"] = "free"}
NewSlot == CHOOSE c \in FreeSlots : \A c2 \in FreeSlots : c <= c2

\* n dials m on slot c: TCP connects; n's preamble and HELLO are sent.
OpenConn(n, m, c) ==
    /\ Assert(FreeSlots # {}, "connection slots exhausted: raise MaxConns")
    /\ C[c].st["d"] = "free"
    /\ C' = [C EXCEPT ![c] = [FreeConn EXCEPT !.d = n, !.a = m,
                 !.st = [e \in E |-> IF e = "d" THEN "hello" ELSE "pending"],
                 !.ch = [e \in E |-> IF e = "d" THEN <<Hello(inc[n])>> ELSE <<>>]]]

\* A connection of n with m is under way (n dialed it, or knows the peer from HELLO).
Handshaking(n, m) ==
    \E c \in Slots :
        \/ C[c].d = n /\ C[c].a = m /\ C[c].st["d"] \in {"hello", "join", "welcome"}
        \/ C[c].a = n /\ C[c].d = m /\ C[c].st["a"] \in {"join", "welcome"}

\* User Connect(n -> m): keep m, dial.  Bounded per pair.
Connect(n, m, c) ==
    /\ n # m
    /\ budget.connect[{n, m}] > 0
    /\ OpenConn(n, m, c)
    /\ keep' = [keep EXCEPT ![n][m] = TRUE]
    /\ budget' = [budget EXCEPT !.connect[{n, m}] = @ - 1]
    /\ UNCHANGED <<inc, ses, ctr, fInc, fCl, ghost>>

\* A node dials its own address (reached through another name).
SelfDial(n, c) ==
    /\ budget.self > 0
    /\ OpenConn(n, n, c)
    /\ budget' = [budget EXCEPT !.self = @ - 1]
    /\ UNCHANGED <<inc, keep, ses, ctr, fInc, fCl, ghost>>

RedialDue(n, m) == n # m /\ keep[n][m] /\ ses[n][m] = 0 /\ ~Handshaking(n, m)

\* Reconnect (section 5): a kept peer with no session and nothing under way.
Redial(n, m, c) ==
    /\ RedialDue(n, m)
    /\ OpenConn(n, m, c)
    /\ UNCHANGED <<inc, keep, ses, ctr, fInc, fCl, budget, ghost>>

\* The acceptor's node accepts c and sends its preamble and HELLO.
Accept(c) ==
    /\ C[c].st["a"] = "pending"
    /\ C' = Send([C EXCEPT ![c].st["a"] = "hello"], c, "a", Hello(inc[C[c].a]))
    /\ UNCHANGED <<inc, keep, ses, ctr, fInc, fCl, budget, ghost>>

\* Leader n grants end e of c (section 3.3) on base value cv, closing its
\* old session s first (BYE replaced).
Grant(cv, n, m, c, e) ==
    LET s == ses[n][m]
        se == EndAt(n, s)
        c1 == IF s # 0 /\ s # c THEN CloseEnd(cv, s, se, TRUE) ELSE cv
        sn == ctr[n] + 1
        c2 == [c1 EXCEPT ![c].st[e] = "est", ![c].sess[e] = sn]
    IN /\ C' = Send(c2, c, e, Welcome(sn, keep[n][m]))
       /\ ctr' = [ctr EXCEPT ![n] = sn]
       /\ ses' = [ses EXCEPT ![n][m] = c]
       /\ fCl' = IF s # 0 /\ s # c THEN FclAfter(n, m, s, se) ELSE fCl

\* Incarnation of the peer on n's session with m (0 if none).
SesInc(n, m) == IF ses[n][m] = 0 THEN 0 ELSE C[ses[n][m]].pinc[EndAt(n, ses[n][m])]
SesNum(n, m) == IF ses[n][m] = 0 THEN 0 ELSE C[ses[n][m]].sess[EndAt(n, ses[n][m])]

\* HELLO(h) on end e of c at n, from m; cv: C with the frame consumed.
OnHello(cv, n, m, c, e, h) ==
    LET s == ses[n][m]
        stale == Variant # "noinc" /\ s # 0 /\ SesInc(n, m) > h
        cv1 == [cv EXCEPT ![c].pinc[e] = h, ![c].pk[e] = TRUE]
    IN
    CASE m = n \/ stale ->    \* self-connect (3.1.1); stale incarnation (3.1.3)
            /\ C' = CloseEnd(cv, c, e, TRUE)
            /\ UNCHANGED <<ses, ctr, fInc, fCl, ghost>>
      [] ~Leads(c, e) ->       \* follower: JOIN, wait for WELCOME
            LET reset == Variant # "noinc" /\ h > fInc[n][m]
                closed == IF Variant = "noinc" THEN fCl[n][m]
                          ELSE IF reset THEN 0
                          ELSE IF h = fInc[n][m] THEN fCl[n][m] ELSE 0
            IN /\ fInc' = IF reset THEN [fInc EXCEPT ![n][m] = h] ELSE fInc
               /\ fCl' = IF reset THEN [fCl EXCEPT ![n][m] = 0] ELSE fCl
               /\ C' = Send([cv1 EXCEPT ![c].st[e] = "welcome",
                                          ![c].sk[e] = keep[n][m]], c, e,
                            Join(closed, keep[n][m]))
               /\ UNCHANGED <<ses, ctr, ghost>>
      [] s = 0 \/ (Variant # "noinc" /\ SesInc(n, m) < h) ->
            \* leader, no session or the peer restarted: grant at once
            /\ Grant(cv1, n, m, c, e)
            /\ UNCHANGED <<fInc, ghost>>
      [] OTHER ->              \* leader with a session of this incarnation
            /\ C' = [cv1 EXCEPT ![c].st[e] = "join"]
            /\ UNCHANGED <<ses, ctr, fInc, fCl, ghost>>

\* The leader closes session end e of c when neither end keeps the pair.
Unwanted(n, m, c, e, myKeep, peerKeep) == Leads(c, e) /\ ~myKeep /\ ~peerKeep

\* JOIN(cl, k) on end e of c at leader n (3.2).
OnJoin(cv, n, m, c, e, cl, k) ==
    LET s == ses[n][m]
        cv1 == [cv EXCEPT ![c].pk[e] = k]
        pi == C[c].pinc[e]
    IN
    IF C[c].st[e] = "est" THEN     \* the grant raced the JOIN: keep flag only
        IF Unwanted(n, m, c, e, keep[n][m], k)
        THEN CloseStep(cv1, n, c, e) /\ UNCHANGED <<ctr, fInc, ghost>>
        ELSE C' = cv1 /\ UNCHANGED <<ses, ctr, fInc, fCl, ghost>>
    ELSE
    CASE s = 0 \/ (Variant # "noinc" /\ SesInc(n, m) < pi) ->
            Grant(cv1, n, m, c, e) /\ UNCHANGED <<fInc, ghost>>
      [] Variant # "noinc" /\ SesInc(n, m) > pi ->
            /\ C' = CloseEnd(cv1, c, e, TRUE)
            /\ UNCHANGED <<ses, ctr, fInc, fCl, ghost>>
      [] SesNum(n, m) <= cl ->   \* the follower abandoned s: replace it
            \* (The Go node closes s without a BYE here, spec/PROTOCOL.md 3.2;
            \* Grant's BYE changes nothing: the follower's end of s is closed,
            \* so CloseEnd frees s whichever it is.)
            Grant(cv1, n, m, c, e) /\ UNCHANGED <<fInc, ghost>>
      [] OTHER ->                \* duplicate
            /\ C' = CloseEnd(cv1, c, e, TRUE)
            /\ ghost' = IF pi > SesInc(n, m) THEN ghost \cup {"slowrestart"} ELSE ghost
            /\ UNCHANGED <<ses, ctr, fInc, fCl>>

\* WELCOME(sn, k) on end e of c at follower n (3.4).
OnWelcome(cv, n, m, c, e, sn, k) ==
    LET s == ses[n][m]
        li == C[c].pinc[e]
        si == SesInc(n, m)
        olderInc == Variant # "noinc" /\ s # 0 /\ si > li
        lowerSess == s # 0 /\ (Variant = "noinc" \/ si = li) /\ sn < SesNum(n, m)
        closedSess == (Variant = "noinc" \/ li = fInc[n][m]) /\ sn <= fCl[n][m]
        se == EndAt(n, s)
    IN
    IF olderInc \/ lowerSess \/ closedSess THEN
        /\ C' = CloseEnd(cv, c, e, TRUE)
        \* refused only because an older incarnation's session is held
        /\ ghost' = IF s # 0 /\ li > si /\ ~(li = fInc[n][m] /\ sn <= fCl[n][m])
                    THEN ghost \cup {"slowrestart"} ELSE ghost
        /\ UNCHANGED <<ses, ctr, fInc, fCl>>
    ELSE
        \* If n's keep flag changed since its JOIN went out, KEEP follows the
        \* adoption at once (3.4), so the leader never decides on a stale flag.
        \* (The Go node closes a current session of the same leader
        \* incarnation without a BYE, spec/PROTOCOL.md 3.4: the leader, which
        \* granted a newer one, closed its end of it, so CloseEnd frees it
        \* with or without the BYE.)
        LET c1 == IF s # 0 THEN CloseEnd(cv, s, se, TRUE) ELSE cv
            c2 == [c1 EXCEPT ![c].st[e] = "est", ![c].sess[e] = sn, ![c].pk[e] = k,
                             ![c].sk[e] = FALSE]
        IN /\ C' = IF keep[n][m] # C[c].sk[e] THEN Send(c2, c, e, KeepF(keep[n][m])) ELSE c2
           /\ ses' = [ses EXCEPT ![n][m] = c]
           /\ fCl' = IF s # 0 THEN FclAfter(n, m, s, se) ELSE fCl
           /\ UNCHANGED <<ctr, fInc, ghost>>

\* End e of c (at node n) processes the next frame the other end sent.
Recv(c, e) ==
    LET n == NodeOf(c, e)
        m == PeerOf(c, e)
        st == C[c].st[e]
        msg == Head(C[c].ch[Other(e)])
        cv == [C EXCEPT ![c].ch[Other(e)] = Tail(@)]
    IN
    /\ st \in {"hello", "join", "welcome", "est"}
    /\ C[c].ch[Other(e)] # <<>>
    /\ CASE msg.t = "BYE" ->
              \* close quietly (the other end is gone)
              CloseStep(cv, n, c, e) /\ UNCHANGED <<ctr, fInc, ghost>>
         [] msg.t = "HELLO" /\ st = "hello" -> OnHello(cv, n, m, c, e, msg.x)
         [] msg.t = "JOIN" /\ st \in {"join", "est"} /\ Leads(c, e) ->
              OnJoin(cv, n, m, c, e, msg.x, msg.k)
         [] msg.t = "WELCOME" /\ st = "welcome" -> OnWelcome(cv, n, m, c, e, msg.x, msg.k)
         [] msg.t = "KEEP" /\ st = "est" ->
              LET cv1 == [cv EXCEPT ![c].pk[e] = msg.k] IN
              IF Unwanted(n, m, c, e, keep[n][m], msg.k)
              THEN CloseStep(cv1, n, c, e) /\ UNCHANGED <<ctr, fInc, ghost>>
              ELSE C' = cv1 /\ UNCHANGED <<ses, ctr, fInc, fCl, ghost>>
         [] OTHER ->   \* a frame not allowed in this state: protocol error
              CloseStep(cv, n, c, e) /\ ghost' = ghost \cup {"proto"}
              /\ UNCHANGED <<ctr, fInc>>
    /\ UNCHANGED <<inc, keep, budget>>

\* The far end is closed and nothing more will arrive: the handshake or
\* peer timeout is certain to fire (heartbeats stop).
Dead(c, e) == C[c].st[Other(e)] = "closed" /\ C[c].ch[Other(e)] = <<>>

\* Handshake timeout or peer timeout of end e of c.  On a dead connection
\* it is certain (and fair); on a live one it is a fault (bounded).
Timeout(c, e) ==
    /\ C[c].st[e] \in {"hello", "join", "welcome", "est"}
    /\ IF Dead(c, e) THEN budget' = budget
       ELSE budget.fault > 0 /\ budget' = [budget EXCEPT !.fault = @ - 1]
    /\ CloseStep(C, NodeOf(c, e), c, e)
    /\ UNCHANGED <<inc, keep, ctr, fInc, ghost>>

DeadTimeout(c, e) == Dead(c, e) /\ Timeout(c, e)

\* The ends of n with peer m past the HELLO (join, welcome, est).
KnownEnds(n, m) == {x \in Slots \X E : NodeOf(x[1], x[2]) = n /\ PeerOf(x[1], x[2]) = m
                                       /\ C[x[1]].st[x[2]] \in {"join", "welcome", "est"}}

\* User Disconnect(n, m) (section 4): stop keeping m and close, BYE normal,
\* every connection with m past the HELLO: the session and any handshake
\* (as fsm/ does: no handshake survives the Disconnect).  A dial still in
\* "hello" goes on (its peer is not known yet).  Enabled when it changes
\* something: m kept, or a connection with m past the HELLO.
Disconnect(n, m) ==
    LET ends == KnownEnds(n, m)
        s == ses[n][m]
    IN
    /\ n # m /\ budget.user > 0
    /\ keep[n][m] \/ ends # {}
    /\ budget' = [budget EXCEPT !.user = @ - 1]
    /\ keep' = [keep EXCEPT ![n][m] = FALSE]
    \* CloseEnd changes only slot c, so the ends close one slot at a time.
    /\ C' = [c \in Slots |->
               IF \E e \in E : <<c, e>> \in ends
               THEN CloseEnd(C, c, CHOOSE e \in E : <<c, e>> \in ends, TRUE)[c]
               ELSE C[c]]
    /\ ses' = [ses EXCEPT ![n][m] = 0]
    /\ fCl' = IF s # 0 THEN FclAfter(n, m, s, EndAt(n, s)) ELSE fCl
    /\ UNCHANGED <<inc, ctr, fInc, ghost>>

\* User Keep(n, m, b): KEEP on the session; the leader drops an unwanted pair.
SetKeep(n, m, b) ==
    /\ n # m /\ budget.user > 0 /\ keep[n][m] # b
    /\ budget' = [budget EXCEPT !.user = @ - 1]
    /\ keep' = [keep EXCEPT ![n][m] = b]
    /\ LET s == ses[n][m]
           se == EndAt(n, s)
       IN IF s = 0 THEN UNCHANGED <<C, ses, fCl>>
          ELSE IF Unwanted(n, m, s, se, b, C[s].pk[se])
          THEN CloseStep(C, n, s, se)
          ELSE C' = Send(C, s, se, KeepF(b)) /\ UNCHANGED <<ses, fCl>>
    /\ UNCHANGED <<inc, ctr, fInc, ghost>>

\* Node n crashes and restarts at once as a new incarnation: every end it
\* had is closed (its peers see FIN after queued frames, unless LoseFin).
\* The restarted application keeps the same peers (it calls Connect again).
CrashRestart(n) ==
    /\ budget.restart > 0
    /\ budget' = [budget EXCEPT !.restart = @ - 1]
    /\ LET Mine(c, e) == NodeOf(c, e) = n /\ C[c].st[e] \in Open
           Gone(c) == \A e \in E : Mine(c, e) \/ C[c].st[e] = "closed"
       IN C' = [c \in Slots |->
                  IF C[c].st["d"] = "free" THEN C[c]
                  ELSE IF Gone(c) THEN FreeConn
                  ELSE [C[c] EXCEPT
                          !.st = [e \in E |-> IF Mine(c, e) THEN "closed" ELSE @[e]],
                          !.pinc = [e \in E |-> IF Mine(c, e) THEN 0 ELSE @[e]],
                          !.sess = [e \in E |-> IF Mine(c, e) THEN 0 ELSE @[e]],
                          !.pk = [e \in E |-> IF Mine(c, e) THEN FALSE ELSE @[e]],
                          !.sk = [e \in E |-> IF Mine(c, e) THEN FALSE ELSE @[e]],
                          !.ch = [e \in E |->
                                   IF Mine(c, Other(e)) THEN <<>>      \* to n: dropped
                                   ELSE IF Mine(c, e) /\ ~LoseFin THEN Append(@[e], Bye)
                                   ELSE @[e]]]]
    /\ inc' = [inc EXCEPT ![n] = @ + 1]
    /\ ses' = [ses EXCEPT ![n] = [m \in Nodes |-> 0]]
    /\ ctr' = [ctr EXCEPT ![n] = 0]
    /\ fInc' = [fInc EXCEPT ![n] = [m \in Nodes |-> 0]]
    /\ fCl' = [fCl EXCEPT ![n] = [m \in Nodes |-> 0]]
    /\ UNCHANGED <<keep, ghost>>

-----------------------------------------------------------------------------
(* Properties *)

Live(c) == c # 0 /\ \A e \in E : C[c].st[e] \in Open

\* Connections of n with m whose end at n is established.
EstAt(n, m) == {c \in Slots : \E e \in E : NodeOf(c, e) = n /\ PeerOf(c, e) = m
                                          /\ C[c].st[e] = "est"}

\* At most one established connection per pair at each end, and it is ses.
AtMostOne ==
    \A n, m \in Nodes :
        LET est == EstAt(n, m) IN
        /\ Cardinality(est) <= 1
        /\ (ses[n][m] = 0) = (est = {})
        /\ ses[n][m] # 0 => ses[n][m] \in est

\* Both ends agree on the session among live connections (3.5).
Agreement ==
    \A n, m \in Nodes :
        (n # m /\ Live(ses[n][m]) /\ Live(ses[m][n])) => ses[n][m] = ses[m][n]

\* No node holds a connection to itself past the HELLO.
NoSelf ==
    \A c \in Slots : C[c].d # 0 /\ C[c].d = C[c].a =>
        \A e \in E : C[c].st[e] \in {"free", "pending", "hello", "closed"}

NoProtocolError == "proto" \notin ghost

\* Section 3.5: a newer incarnation is never refused because of an older one.
RestartImmediate == "slowrestart" \notin ghost

Kept(n, m) == keep[n][m] \/ keep[m][n]

InFlight == \E c \in Slots, e \in E : C[c].ch[e] # <<>>

Quiescent ==
    /\ ~InFlight
    /\ \A c \in Slots, e \in E : C[c].st[e] \notin Handshake
    /\ \A c \in Slots : C[c].st["d"] = "free" \/ \A e \in E : C[c].st[e] = "est"
    /\ \A n, m \in Nodes : ~RedialDue(n, m)

Agreed(n, m) == ses[n][m] # 0 /\ ses[n][m] = ses[m][n] /\ Live(ses[n][m])

\* Once nothing is in flight, every kept pair has one session, agreed.
QuiescentAgreement ==
    Quiescent => \A n, m \in Nodes : n < m /\ Kept(n, m) => Agreed(n, m)

Safety == AtMostOne /\ Agreement /\ NoSelf /\ NoProtocolError /\ QuiescentAgreement

Converged ==
    \A n, m \in Nodes : n < m =>
        IF Kept(n, m) THEN Agreed(n, m) ELSE ses[n][m] = 0 /\ ses[m][n] = 0

\* Once the bounded faults are over, every kept pair ends with one session.
EventuallyConverged == <>[]Converged

-----------------------------------------------------------------------------

\* Explicit end: nothing in flight, nothing pending.  Only a state with no
\* enabled step and not Quiescent is a deadlock.
Done == Quiescent /\ UNCHANGED vars

Next ==
    \/ \E n, m \in Nodes : Connect(n, m, NewSlot)
    \/ \E n \in Nodes : SelfDial(n, NewSlot)
    \/ \E n, m \in Nodes : Redial(n, m, NewSlot)
    \/ \E c \in Slots : Accept(c)
    \/ \E c \in Slots, e \in E : Recv(c, e)
    \/ \E c \in Slots, e \in E : Timeout(c, e)
    \/ \E n, m \in Nodes : Disconnect(n, m)
    \/ \E n, m \in Nodes, b \in BOOLEAN : SetKeep(n, m, b)
    \/ \E n \in Nodes : CrashRestart(n)
    \/ Done

Spec == Init /\ [][Next]_vars

Fairness ==
    /\ \A c \in Slots : WF_vars(Accept(c))
    /\ \A c \in Slots, e \in E : WF_vars(Recv(c, e)) /\ WF_vars(DeadTimeout(c, e))
    /\ \A n, m \in Nodes : WF_vars(Redial(n, m, NewSlot))

LiveSpec == Spec /\ Fairness
=============================================================================
