// Cross-section of a cooled turbine blade at mid-span (units: m).
// A cambered NACA-type airfoil (chord 50 mm, 20 % thick, 6 % camber) with three spanwise
// cooling channels, on a neck whose base ("root") is held by the disc.
// Physical groups: surface "blade"; curves "gas" (hot-gas side), "coolant" (channel walls),
// "neck" (insulated platform sides), "root" (fixed).
// Regenerate: gmsh -2 -order 2 -format msh41 blade.geo -o blade.msh
SetFactory("OpenCASCADE");

c = 0.05;       // chord
m = 0.06;       // camber
p = 0.4;        // camber position
t = 0.20;       // thickness
N = 40;         // points per surface

upper[] = {};
lower[] = {};
For i In {0:N}
  beta = Pi * i / N;
  xc = 0.5 * (1 - Cos(beta));
  // Closed trailing edge (last coefficient -0.1036).
  yt = 5 * t * (0.2969 * Sqrt(xc) - 0.1260 * xc - 0.3516 * xc^2 + 0.2843 * xc^3 - 0.1036 * xc^4);
  If (xc < p)
    yc = m / p^2 * (2 * p * xc - xc^2);
    dyc = 2 * m / p^2 * (p - xc);
  Else
    yc = m / (1 - p)^2 * ((1 - 2 * p) + 2 * p * xc - xc^2);
    dyc = 2 * m / (1 - p)^2 * (p - xc);
  EndIf
  th = Atan(dyc);
  If (i == 0)
    le = newp; Point(le) = {0, 0, 0};
    upper[] += le;
  ElseIf (i == N)
    te = newp; Point(te) = {c, 0, 0};
    upper[] += te;
  Else
    pu = newp; Point(pu) = {c * (xc - yt * Sin(th)), c * (yc + yt * Cos(th)), 0};
    upper[] += pu;
    pl = newp; Point(pl) = {c * (xc + yt * Sin(th)), c * (yc - yt * Cos(th)), 0};
    lower[] += pl;
  EndIf
EndFor
su = newc; Spline(su) = upper[];
lower_pts[] = {le, lower[], te};
sl = newc; Spline(sl) = lower_pts[];
loop = newll; Curve Loop(loop) = {su, -sl};
airfoil = news; Plane Surface(airfoil) = {loop};

// Neck down to the root.
neck_x0 = 0.018; neck_w = 0.014; root_y = -0.014;
neck = news; Rectangle(neck) = {neck_x0, root_y, 0, neck_w, -root_y + 0.002};
body() = BooleanUnion{ Surface{airfoil}; Delete; }{ Surface{neck}; Delete; };

// Cooling channels.
d1 = news; Disk(d1) = {0.0100, 0.00225, 0, 0.0025};
d2 = news; Disk(d2) = {0.0225, 0.00298, 0, 0.0025};
d3 = news; Disk(d3) = {0.0350, 0.00225, 0, 0.0015};
blade() = BooleanDifference{ Surface{body()}; Delete; }{ Surface{d1, d2, d3}; Delete; };

eps = 1e-6;
root() = Curve In BoundingBox{neck_x0 - eps, root_y - eps, -1, neck_x0 + neck_w + eps, root_y + eps, 1};
neck_l() = Curve In BoundingBox{neck_x0 - eps, root_y - eps, -1, neck_x0 + eps, 0.001, 1};
neck_r() = Curve In BoundingBox{neck_x0 + neck_w - eps, root_y - eps, -1, neck_x0 + neck_w + eps, 0.001, 1};
cool() = Curve In BoundingBox{0.0075 - eps, -0.0003, -1, 0.0125 + eps, 0.0048, 1};
cool() += Curve In BoundingBox{0.0200 - eps, 0.0004, -1, 0.0250 + eps, 0.0055, 1};
cool() += Curve In BoundingBox{0.0335 - eps, 0.0007, -1, 0.0365 + eps, 0.0038, 1};
gas() = Abs(CombinedBoundary{ Surface{blade()}; });
gas() -= {root(), neck_l(), neck_r(), cool()};

Physical Surface("blade") = {blade()};
Physical Curve("gas") = {gas()};
Physical Curve("coolant") = {cool()};
Physical Curve("neck") = {neck_l(), neck_r()};
Physical Curve("root") = {root()};

Mesh.CharacteristicLengthMax = 0.0007;
Mesh.CharacteristicLengthMin = 0.0002;
Mesh.MeshSizeFromCurvature = 12;
Mesh.ElementOrder = 2;
Mesh.MshFileVersion = 4.1;
