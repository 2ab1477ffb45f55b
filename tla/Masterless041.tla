---------------------------- MODULE Masterless041 ----------------------------
(***************************************************************************)
(* The handshake of masterless 0.4.1 (npm, lib/masterless.js), modelled    *)
(* from its source for comparison with the v1 protocol (Masterless.tla).   *)
(*                                                                         *)
(* Dialer sends ID(+info); acceptor answers ID; dialer sends PRIO p: a     *)
(* random value when its node's incoming connection from that peer is      *)
(* also handshaking, else 1 (always wins); 0 aborts.  The acceptor closes  *)
(* if its own outgoing connection to the peer is connected, or handshaking *)
(* with a greater priority; otherwise it sends CONFIRM.  Per peer a node   *)
(* tracks one outgoing state ls/lp and one incoming state rs/rp            *)
(* (NC, CONNECTING, CONNECTED) and the stream it sends on.                 *)
(*                                                                         *)
(* Priorities: 0 abort, Rand = {1, 2} abstracts Math.random() in [0,1)     *)
(* (ties possible iff Ties), Force = 3 stands for 0.4.1's 1 (> any random).*)
(* Both nodes keep each other (each called connect()).  Abstracted: the    *)
(* JSON framing, [keep] packets and heartbeats, "discard unwanted",        *)
(* reconnect's `reconnecting` flag (a lost session sets rc; Redial dials). *)
(***************************************************************************)
EXTENDS Integers, Sequences, FiniteSets, TLC

CONSTANTS Nodes, MaxConnects, MaxRestarts, MaxFaults, MaxConns, LoseFin, Ties

NC == 0  CONNECTING == 1  CONNECTED == 2
Rand == {1, 2}
Force == 3

VARIABLES C, ls, lp, rs, rp, stream, rc, budget
vars == <<C, ls, lp, rs, rp, stream, rc, budget>>

Slots == 1..MaxConns
E == {"d", "a"}
Other(e) == IF e = "d" THEN "a" ELSE "d"
Msg(t, p) == [t |-> t, p |-> p]
FIN == Msg("FIN", 0)
FreeConn == [d |-> 0, a |-> 0, st |-> [e \in E |-> "free"], ch |-> [e \in E |-> <<>>]]
NodeOf(c, e) == IF e = "d" THEN C[c].d ELSE C[c].a
PeerOf(c, e) == NodeOf(c, Other(e))
Open == {"pending", "waitid", "waitprio", "waitconfirm", "est"}

Send(cv, c, e, m) ==
    IF cv[c].st[Other(e)] = "closed" THEN cv ELSE [cv EXCEPT ![c].ch[e] = Append(@, m)]
CloseEnd(cv, c, e, fin) ==
    IF cv[c].st[Other(e)] = "closed" THEN [cv EXCEPT ![c] = FreeConn]
    ELSE [cv EXCEPT ![c].st[e] = "closed", ![c].ch[Other(e)] = <<>>,
                    ![c].ch[e] = IF fin THEN Append(@, FIN) ELSE @]

NN == [n \in Nodes |-> [m \in Nodes |-> 0]]
Init ==
    /\ C = [c \in Slots |-> FreeConn]
    /\ ls = NN /\ lp = NN /\ rs = NN /\ rp = NN /\ stream = NN
    /\ rc = [n \in Nodes |-> [m \in Nodes |-> FALSE]]
    /\ budget = [connect |-> [n \in Nodes |-> [m \in Nodes |-> MaxConnects]],
                 restart |-> MaxRestarts, fault |-> MaxFaults]

FreeSlots == {c \in Slots : C[c].st["d"] = "free"}
NewSlot == CHOOSE c \in FreeSlots : \A c2 \in FreeSlots : c <= c2
Dial(n, m, c) ==
    /\ Assert(FreeSlots # {}, "connection slots exhausted: raise MaxConns")
    /\ C' = [C EXCEPT ![c] = [d |-> n, a |-> m,
                 st |-> [e \in E |-> IF e = "d" THEN "waitid" ELSE "pending"],
                 ch |-> [e \in E |-> IF e = "d" THEN <<Msg("ID", 0)>> ELSE <<>>]]]

\* user connect(): dials (bounded)
Connect(n, m) ==
    /\ n # m /\ budget.connect[n][m] > 0
    /\ Dial(n, m, NewSlot)
    /\ budget' = [budget EXCEPT !.connect[n][m] = @ - 1]
    /\ UNCHANGED <<ls, lp, rs, rp, stream, rc>>

\* reconnect() after a lost session (or at restart): one dial
Redial(n, m) ==
    /\ rc[n][m]
    /\ Dial(n, m, NewSlot)
    /\ rc' = [rc EXCEPT ![n][m] = FALSE]
    /\ UNCHANGED <<ls, lp, rs, rp, stream, budget>>

Accept(c) ==
    /\ C[c].st["a"] = "pending"
    /\ C' = [C EXCEPT ![c].st["a"] = "waitid"]
    /\ UNCHANGED <<ls, lp, rs, rp, stream, rc, budget>>

\* after the handshake, the connection ended (onhandshake's onend, kept)
LostSession(n, m, c) ==
    /\ stream' = [stream EXCEPT ![n][m] = 0]
    /\ IF rs[n][m] = CONNECTED
       THEN rs' = [rs EXCEPT ![n][m] = NC] /\ rp' = [rp EXCEPT ![n][m] = 0] /\ UNCHANGED <<ls, lp>>
       ELSE ls' = [ls EXCEPT ![n][m] = NC] /\ lp' = [lp EXCEPT ![n][m] = 0] /\ UNCHANGED <<rs, rp>>
    /\ rc' = [rc EXCEPT ![n][m] = TRUE]

Recv(c, e) ==
    LET n == NodeOf(c, e)
        m == PeerOf(c, e)
        st == C[c].st[e]
        msg == Head(C[c].ch[Other(e)])
        cv == [C EXCEPT ![c].ch[Other(e)] = Tail(@)]
    IN
    /\ st \in {"waitid", "waitprio", "waitconfirm", "est"}
    /\ C[c].ch[Other(e)] # <<>>
    /\ UNCHANGED budget
    /\ CASE msg.t = "FIN" ->
              /\ C' = CloseEnd(cv, c, e, FALSE)
              /\ CASE st = "est" -> LostSession(n, m, c)
                   [] st = "waitconfirm" ->
                        ls' = [ls EXCEPT ![n][m] = NC] /\ lp' = [lp EXCEPT ![n][m] = 0]
                        /\ UNCHANGED <<rs, rp, stream, rc>>
                   [] st = "waitprio" ->
                        rs' = [rs EXCEPT ![n][m] = NC] /\ rp' = [rp EXCEPT ![n][m] = 0]
                        /\ UNCHANGED <<ls, lp, stream, rc>>
                   [] OTHER -> UNCHANGED <<ls, lp, rs, rp, stream, rc>>
         [] e = "d" /\ st = "waitid" /\ msg.t = "ID" ->
              CASE m = n -> C' = CloseEnd(cv, c, e, TRUE) /\ UNCHANGED <<ls, lp, rs, rp, stream, rc>>
                [] ls[n][m] # NC ->     \* duplicate outgoing: abort
                     /\ C' = CloseEnd(Send(cv, c, e, Msg("PRIO", 0)), c, e, TRUE)
                     /\ UNCHANGED <<ls, lp, rs, rp, stream, rc>>
                [] rs[n][m] = CONNECTED ->
                     /\ C' = CloseEnd(Send(cv, c, e, Msg("PRIO", 0)), c, e, TRUE)
                     /\ ls' = [ls EXCEPT ![n][m] = NC] /\ lp' = [lp EXCEPT ![n][m] = 0]
                     /\ UNCHANGED <<rs, rp, stream, rc>>
                [] OTHER ->
                     \E p \in IF rs[n][m] = CONNECTING
                              THEN (IF Ties THEN Rand ELSE Rand \ {lp[m][n]})
                              ELSE {Force} :
                        /\ C' = Send([cv EXCEPT ![c].st[e] = "waitconfirm"], c, e, Msg("PRIO", p))
                        /\ ls' = [ls EXCEPT ![n][m] = CONNECTING]
                        /\ lp' = [lp EXCEPT ![n][m] = p]
                        /\ UNCHANGED <<rs, rp, stream, rc>>
         [] e = "d" /\ st = "waitconfirm" /\ msg.t = "CONFIRM" ->
              /\ C' = [cv EXCEPT ![c].st[e] = "est"]
              /\ ls' = [ls EXCEPT ![n][m] = CONNECTED] /\ lp' = [lp EXCEPT ![n][m] = Force]
              /\ stream' = [stream EXCEPT ![n][m] = c]
              /\ UNCHANGED <<rs, rp, rc>>
         [] e = "a" /\ st = "waitid" /\ msg.t = "ID" ->
              CASE m = n \/ rs[n][m] # NC ->   \* self, or a second incoming: refused
                     C' = CloseEnd(cv, c, e, TRUE) /\ UNCHANGED <<ls, lp, rs, rp, stream, rc>>
                [] ls[n][m] # NC ->
                     /\ C' = CloseEnd(cv, c, e, TRUE)
                     /\ rs' = [rs EXCEPT ![n][m] = NC] /\ rp' = [rp EXCEPT ![n][m] = 0]
                     /\ UNCHANGED <<ls, lp, stream, rc>>
                [] OTHER ->
                     /\ C' = Send([cv EXCEPT ![c].st[e] = "waitprio"], c, e, Msg("ID", 0))
                     /\ rs' = [rs EXCEPT ![n][m] = CONNECTING]
                     /\ UNCHANGED <<ls, lp, rp, stream, rc>>
         [] e = "a" /\ st = "waitprio" /\ msg.t = "PRIO" ->
              IF ls[n][m] = CONNECTED \/ (ls[n][m] = CONNECTING /\ msg.p < lp[n][m])
              THEN /\ C' = CloseEnd(cv, c, e, TRUE)
                   /\ rs' = [rs EXCEPT ![n][m] = NC] /\ rp' = [rp EXCEPT ![n][m] = 0]
                   /\ UNCHANGED <<ls, lp, stream, rc>>
              ELSE /\ C' = Send([cv EXCEPT ![c].st[e] = "est"], c, e, Msg("CONFIRM", 0))
                   /\ rs' = [rs EXCEPT ![n][m] = CONNECTED] /\ rp' = [rp EXCEPT ![n][m] = Force]
                   /\ stream' = [stream EXCEPT ![n][m] = c]
                   /\ UNCHANGED <<ls, lp, rc>>
         [] OTHER ->   \* "unexpected packet": close, reset the direction
              /\ C' = CloseEnd(cv, c, e, TRUE)
              /\ IF st = "est" THEN LostSession(n, m, c)
                 ELSE UNCHANGED <<ls, lp, rs, rp, stream, rc>>

Dead(c, e) == C[c].st[Other(e)] = "closed" /\ C[c].ch[Other(e)] = <<>>

\* Outgoing connections time out after 5 s of silence (onerror: reset,
\* reconnect if no incoming); incoming ones never do.  On a dead outgoing
\* connection the timeout is certain; on a live one it is a fault.
Timeout(c) ==
    LET n == C[c].d  m == C[c].a  st == C[c].st["d"] IN
    /\ st \in {"waitid", "waitconfirm", "est"}
    /\ IF Dead(c, "d") THEN UNCHANGED budget
       ELSE budget.fault > 0 /\ budget' = [budget EXCEPT !.fault = @ - 1]
    /\ C' = CloseEnd(C, c, "d", TRUE)
    /\ IF st = "est" THEN LostSession(n, m, c)
       ELSE IF st = "waitconfirm"
       THEN /\ ls' = [ls EXCEPT ![n][m] = NC] /\ lp' = [lp EXCEPT ![n][m] = 0]
            /\ rc' = IF rs[n][m] = NC THEN [rc EXCEPT ![n][m] = TRUE] ELSE rc
            /\ UNCHANGED <<rs, rp, stream>>
       ELSE UNCHANGED <<ls, lp, rs, rp, stream, rc>>
DeadTimeout(c) == Dead(c, "d") /\ Timeout(c)

\* Crash and restart: connections closed, state lost; the application
\* connects again to the peers it keeps.
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
                          !.ch = [e \in E |-> IF Mine(c, Other(e)) THEN <<>>
                                   ELSE IF Mine(c, e) /\ ~LoseFin THEN Append(@[e], FIN)
                                   ELSE @[e]]]]
    /\ ls' = [ls EXCEPT ![n] = [m \in Nodes |-> NC]]
    /\ lp' = [lp EXCEPT ![n] = [m \in Nodes |-> 0]]
    /\ rs' = [rs EXCEPT ![n] = [m \in Nodes |-> NC]]
    /\ rp' = [rp EXCEPT ![n] = [m \in Nodes |-> 0]]
    /\ stream' = [stream EXCEPT ![n] = [m \in Nodes |-> 0]]
    /\ rc' = [rc EXCEPT ![n] = [m \in Nodes |-> m # n]]

Live(c) == c # 0 /\ \A e \in E : C[c].st[e] \in Open
EstAt(n, m) == {c \in Slots : \E e \in E : NodeOf(c, e) = n /\ PeerOf(c, e) = m
                                          /\ C[c].st[e] = "est"}
AtMostOne == \A n, m \in Nodes : Cardinality(EstAt(n, m)) <= 1
Agreement == \A n, m \in Nodes :
    (n # m /\ Live(stream[n][m]) /\ Live(stream[m][n])) => stream[n][m] = stream[m][n]
Converged == \A n, m \in Nodes : n < m =>
    /\ Live(stream[n][m]) /\ stream[n][m] = stream[m][n]
    /\ EstAt(n, m) = {stream[n][m]} /\ EstAt(m, n) = {stream[n][m]}
EventuallyConverged == <>[]Converged

Quiescent == /\ \A c \in Slots, e \in E : C[c].ch[e] = <<>> /\ C[c].st[e] \notin {"pending"}
             /\ \A n, m \in Nodes : ~rc[n][m]
Done == Quiescent /\ UNCHANGED vars

Next ==
    \/ \E n, m \in Nodes : Connect(n, m) \/ Redial(n, m)
    \/ \E c \in Slots : Accept(c) \/ Timeout(c) \/ \E e \in E : Recv(c, e)
    \/ \E n \in Nodes : CrashRestart(n)
    \/ Done

Spec == Init /\ [][Next]_vars
LiveSpec == Spec /\ \A c \in Slots : (WF_vars(Accept(c)) /\ WF_vars(DeadTimeout(c))
                                      /\ \A e \in E : WF_vars(Recv(c, e)))
                 /\ \A n, m \in Nodes : WF_vars(Redial(n, m))
=============================================================================
