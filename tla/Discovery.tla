------------------------------ MODULE Discovery ------------------------------
(***************************************************************************)
(* Discovery's leave and announce rules (spec/PROTOCOL.md, section 8), on *)
(* top of an abstract session layer: a session between two live nodes is *)
(* established in one step (Masterless.tla checks which connection it is; *)
(* here only "who holds a session with which incarnation" matters).       *)
(*                                                                         *)
(* MEMBERS traffic is modelled as transfers: at any time a node may tell a *)
(* peer it has a live session with one entry of what it knows (itself,   *)
(* the members it has a session with, the records it learned, alive or   *)
(* left), and the peer applies the learning rules of section 8.3 at once. *)
(* Any order of transfers is allowed, which covers the deltas, the full   *)
(* views and the gossip, and any delay between them.  A leave is the one  *)
(* message that outlives its sender: it is in flight until received, and *)
(* closes the receiver's session with the leaver (its BYE follows it).   *)
(*                                                                         *)
(* Checked: a left record stays left (LeftStaysLeft); a node never holds  *)
(* a session with an older incarnation of a member than the newest it    *)
(* knows (NoStaleSession); once faults are over, every member whose last  *)
(* incarnation left is known as left, or not at all, by every live node,  *)
(* so no one dials it (DepartedForgotten); and every two live nodes hold  *)
(* a session with each other's current incarnation (Adopted): a restarted *)
(* node that knows only the seed is adopted by every member.              *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets, TLC

CONSTANTS Nodes, Seed, Mortal, MaxInc, Variant, Auth
\* Mortal: the nodes that may leave, crash and restart (never the seed).
\* Auth: the nodes authenticate (section 7): first-hand beats hearsay, an
\* entry about a member the receiver holds a session with counts only when
\* that member sent it (section 8.3).
\* Variant: "correct", or a deliberately wrong rule for the negative
\* controls: "leftrevives" (an alive entry of the same incarnation revives a
\* left record), "nostaleclose" (a newer incarnation learned does not close
\* the session with the older one), "notombstone" (a forgotten record is no
\* record: any entry revives it), "nohearsay" (with Auth: an entry counts
\* only when its member sent it, session or not).

VARIABLES inc, alive, table, sess, leaves, leftSeen, gone
vars == <<inc, alive, table, sess, leaves, leftSeen, gone>>

\* A record: the incarnation, left or not, and forgotten (a tombstone).
None == [inc |-> 0, left |-> FALSE, fgt |-> FALSE]
Rec(i, l) == [inc |-> i, left |-> l, fgt |-> FALSE]

Init ==
    /\ inc = [n \in Nodes |-> 1]
    /\ alive = [n \in Nodes |-> TRUE]
    /\ table = [n \in Nodes |-> [m \in Nodes |->
                  IF m = Seed /\ n # Seed THEN Rec(1, FALSE) ELSE None]]
    /\ sess = [n \in Nodes |-> [m \in Nodes |-> 0]]
    /\ leaves = {}      \* leave notices in flight: [from, inc, to, toInc]
    /\ leftSeen = {}    \* history: <<n, m, i>> once n recorded m's incarnation i as left
    /\ gone = {}        \* history: <<n, i>> once n's incarnation i left

Live(n, z) == alive[n] /\ alive[z] /\ sess[n][z] = inc[z] /\ sess[z][n] = inc[n]

\* What n may tell a peer: itself, its sessions, its records.
Known(n) ==
    {[id |-> n, inc |-> inc[n], left |-> FALSE]}
    \cup {[id |-> z, inc |-> sess[n][z], left |-> FALSE] : z \in {z \in Nodes : sess[n][z] # 0}}
    \cup {[id |-> z, inc |-> table[n][z].inc, left |-> table[n][z].left] :
             z \in {z \in Nodes : table[n][z].inc # 0 /\ ~table[n][z].fgt}}

IsNews(rec, e) ==
    \/ rec.inc = 0
    \/ e.inc > rec.inc
    \/ e.inc = rec.inc /\ e.left /\ ~rec.left
    \/ Variant = "leftrevives" /\ e.inc = rec.inc /\ ~e.left /\ rec.left
    \/ Variant = "notombstone" /\ rec.fgt

\* n applies entry e, which node from told it: the record, and the stale
\* session closed at once.
Hearsay(n, e, from) ==
    /\ Auth /\ e.id # from
    /\ sess[n][e.id] # 0 \/ Variant = "nohearsay"
Learn(n, e, from) ==
    LET news == e.id # n /\ IsNews(table[n][e.id], e) /\ ~Hearsay(n, e, from)
        stale == news /\ sess[n][e.id] # 0 /\ sess[n][e.id] < e.inc /\ Variant # "nostaleclose"
    IN
    /\ table' = IF news THEN [table EXCEPT ![n][e.id] = Rec(e.inc, e.left)] ELSE table
    /\ leftSeen' = IF news /\ e.left THEN leftSeen \cup {<<n, e.id, e.inc>>} ELSE leftSeen
    /\ sess' = IF stale THEN [sess EXCEPT ![n][e.id] = 0] ELSE sess

\* Dial(n, m): n keeps m (a live record) and has no session with it; the
\* dial reaches m if m runs the incarnation n knows (a new incarnation may
\* listen elsewhere).  The session is up at both ends at once, and each end
\* learns the other from it (fsm's discoveryUp).
Dial(n, m) ==
    /\ n # m /\ alive[n] /\ alive[m]
    /\ table[n][m].inc > 0 /\ ~table[n][m].left /\ ~table[n][m].fgt
    /\ sess[n][m] = 0
    /\ inc[m] = table[n][m].inc
    /\ LET up(t, a, b) == \* a learns b from the session (a tombstone of it is cleared)
               IF IsNews(t[a][b], [id |-> b, inc |-> inc[b], left |-> FALSE]) \/ (t[a][b].fgt /\ t[a][b].inc <= inc[b])
               THEN [t EXCEPT ![a][b] = Rec(inc[b], FALSE)] ELSE t
       IN table' = up(up(table, n, m), m, n)
    /\ sess' = [sess EXCEPT ![n][m] = inc[m], ![m][n] = inc[n]]
    /\ UNCHANGED <<inc, alive, leaves, leftSeen, gone>>

\* Tell(n, z, e): n tells z, over their live session, an entry it knows.
Tell(n, z, e) ==
    /\ n # z /\ Live(n, z) /\ e \in Known(n) /\ e.id # z
    /\ Learn(z, e, n)
    /\ UNCHANGED <<inc, alive, leaves, gone>>

\* Leave: Close sends a left entry for itself on every session, then BYE.
Leave(n) ==
    /\ n \in Mortal /\ alive[n]
    /\ leaves' = leaves \cup {[from |-> n, inc |-> inc[n], to |-> z, toInc |-> inc[z]] :
                                 z \in {z \in Nodes : sess[n][z] # 0 /\ alive[z]}}
    /\ alive' = [alive EXCEPT ![n] = FALSE]
    /\ sess' = [sess EXCEPT ![n] = [m \in Nodes |-> 0]]
    /\ gone' = gone \cup {<<n, inc[n]>>}
    /\ UNCHANGED <<inc, table, leftSeen>>

\* A leave notice arrives (if its receiver still runs): the record says
\* left, and the session with the leaver ends (its BYE follows).
GetLeave(l) ==
    /\ l \in leaves
    /\ leaves' = leaves \ {l}
    /\ IF alive[l.to] /\ inc[l.to] = l.toInc
       THEN LET news == IsNews(table[l.to][l.from], [id |-> l.from, inc |-> l.inc, left |-> TRUE])
            IN /\ table' = IF news THEN [table EXCEPT ![l.to][l.from] = Rec(l.inc, TRUE)] ELSE table
               /\ leftSeen' = IF news THEN leftSeen \cup {<<l.to, l.from, l.inc>>} ELSE leftSeen
               /\ sess' = IF sess[l.to][l.from] <= l.inc THEN [sess EXCEPT ![l.to][l.from] = 0] ELSE sess
       ELSE UNCHANGED <<table, leftSeen, sess>>
    /\ UNCHANGED <<inc, alive, gone>>

\* Crash: nothing is said; the others notice by the peer timeout.
Crash(n) ==
    /\ n \in Mortal /\ alive[n]
    /\ alive' = [alive EXCEPT ![n] = FALSE]
    /\ sess' = [sess EXCEPT ![n] = [m \in Nodes |-> 0]]
    /\ UNCHANGED <<inc, table, leaves, leftSeen, gone>>

\* Restart: a new incarnation (on another port) that knows only the seed.
Restart(n) ==
    /\ n \in Mortal /\ ~alive[n] /\ inc[n] < MaxInc
    /\ inc' = [inc EXCEPT ![n] = inc[n] + 1]
    /\ alive' = [alive EXCEPT ![n] = TRUE]
    /\ table' = [table EXCEPT ![n] = [m \in Nodes |-> IF m = Seed THEN Rec(inc[Seed], FALSE) ELSE None]]
    /\ leftSeen' = {x \in leftSeen : x[1] # n}
    /\ UNCHANGED <<sess, leaves, gone>>

\* Timeout: a session whose other end is gone, or holds no session with this
\* end's incarnation, ends (the peer timeout, or the FIN).
Timeout(n, m) ==
    /\ alive[n] /\ sess[n][m] # 0
    /\ ~alive[m] \/ inc[m] # sess[n][m] \/ sess[m][n] # inc[n]
    /\ sess' = [sess EXCEPT ![n][m] = 0]
    /\ UNCHANGED <<inc, alive, table, leaves, leftSeen, gone>>

\* Forget: the member timeout, for a live record of an incarnation that no
\* longer runs (crashed, or left without this node hearing of it yet); the
\* record stays as a tombstone.  (Time is not modelled: that a leave makes
\* this wait unnecessary is not checked here, only that nothing breaks.)
Forget(n, m) ==
    /\ alive[n] /\ table[n][m].inc # 0 /\ ~table[n][m].left /\ ~table[n][m].fgt /\ sess[n][m] = 0
    /\ ~(alive[m] /\ inc[m] = table[n][m].inc)
    /\ table' = [table EXCEPT ![n][m].fgt = TRUE]
    /\ UNCHANGED <<inc, alive, sess, leaves, leftSeen, gone>>

Fault == \E n \in Nodes : Leave(n) \/ Crash(n) \/ Restart(n)
Next ==
    \/ Fault
    \/ \E n, m \in Nodes : Dial(n, m) \/ Timeout(n, m) \/ Forget(n, m)
    \/ \E n, z \in Nodes : \E e \in Known(n) : Tell(n, z, e)
    \/ \E l \in leaves : GetLeave(l)

Spec == Init /\ [][Next]_vars

\* The mortal nodes play interchangeable parts: nothing in the rules or the
\* invariants tells one from another (no rule compares node ids, and the
\* seed is not mortal). A safety check may declare this symmetry, so that
\* TLC explores one state of each class of states equal up to a renaming of
\* the mortal nodes (Disc3Safety.cfg; never with liveness properties, where
\* TLC's symmetry reduction is unsound).
MortalSymmetry == Permutations(Mortal)

\* Liveness: faults are bounded (one leave or crash per incarnation, MaxInc
\* incarnations), and every healing step is weakly fair.
LiveSpec ==
    /\ Spec
    /\ \A n, m \in Nodes : WF_vars(Dial(n, m)) /\ WF_vars(Timeout(n, m)) /\ WF_vars(Forget(n, m))
    /\ \A n, z \in Nodes : WF_vars(\E e \in Known(n) : Tell(n, z, e) /\ table' # table)
    /\ WF_vars(\E l \in leaves : GetLeave(l))

TypeOK ==
    /\ inc \in [Nodes -> 1..MaxInc]
    /\ alive \in [Nodes -> BOOLEAN]
    /\ table \in [Nodes -> [Nodes -> [inc: 0..MaxInc, left: BOOLEAN, fgt: BOOLEAN]]]
    /\ sess \in [Nodes -> [Nodes -> 0..MaxInc]]

\* A node never holds a session with an older incarnation of a member than
\* the newest it knows of.
NoStaleSession ==
    \A n, m \in Nodes : alive[n] /\ sess[n][m] # 0 => sess[n][m] >= table[n][m].inc

\* A left record stays left while its incarnation is the one recorded.
LeftStaysLeft ==
    \A x \in leftSeen : table[x[1]][x[2]].inc = x[3] => table[x[1]][x[2]].left

\* Once faults are over: no live node keeps a live record (one it would
\* dial) of an incarnation that is gone, and every two live nodes hold a
\* session with each other's incarnation.
DepartedForgotten ==
    <>[](\A n, m \in Nodes : alive[n] /\ table[n][m].inc # 0 /\ ~table[n][m].left /\ ~table[n][m].fgt =>
                                alive[m] /\ inc[m] = table[n][m].inc)
Adopted ==
    <>[](\A n, m \in Nodes : n # m /\ alive[n] /\ alive[m] => sess[n][m] = inc[m])
=============================================================================
